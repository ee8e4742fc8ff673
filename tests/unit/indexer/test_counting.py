"""Counts and relations of boxed objects: what a query asks, what the boxes answer, per shot
in a video, and what the model stores for images with nothing to find."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from indexer.domain import Box, Description, DetectedObject
from indexer.reasoning.counting import detector_label, object_match, parse_query
from indexer.reasoning.qa import EvidenceQA
from indexer.reasoning.refs import Resolution, ResultRef
from indexer.stores.catalog import ViewRecord
from indexer.temporal import answer_temporal


def _d(*objs: tuple[str, float, tuple[float, float, float, float]]) -> Description:
    return Description(caption="", tags=[], ocr=[], colors={}, extra={},
                       objects=[DetectedObject(lb, sc, Box(*b), "centernet")
                                for lb, sc, b in objs])


@pytest.mark.parametrize(("query", "labels", "counts", "relations"), [
    ("two dogs on a sofa", ["dog", "couch"], [2, None], [(0, "on", 1)]),
    ("a dog", ["dog"], [None], []),  # "a" is not an exact count
    ("one cat", ["cat"], [1], []),
    ("3 people", ["person"], [3], []),
    ("a person to the left of a bicycle", ["person", "bicycle"], [None, None],
     [(0, "left_of", 1)]),
    ("a mug on a table", ["cup", "dining table"], [None, None], [(0, "on", 1)]),
    ("a house", [], [], []),  # no detector knows houses
    ("fruit", [], [], []),
])
def test_parse_query(query: str, labels: list[str], counts: list[int | None],
                     relations: list[tuple[int, str, int]]) -> None:
    q = parse_query(query)
    assert [w.label for w in q.objects] == labels
    assert [w.count for w in q.objects] == counts
    assert q.relations == relations


def test_detector_label_synonyms_and_heads() -> None:
    assert detector_label("sofa") == "couch"
    assert detector_label("people") == "person"
    assert detector_label("coffee cup") == "cup"
    assert detector_label("teddy bear") == "teddy bear"
    assert detector_label("dragon") is None


def test_object_match_counts_and_relations() -> None:
    two_dogs_on_sofa = _d(("dog", 0.7, (10, 10, 60, 50)), ("dog", 0.6, (80, 10, 130, 50)),
                          ("couch", 0.8, (0, 40, 200, 120)))
    one_dog_beside = _d(("dog", 0.7, (300, 10, 350, 110)), ("couch", 0.8, (0, 40, 200, 120)))
    q = parse_query("two dogs on a sofa")
    good, bad = object_match(q, two_dogs_on_sofa), object_match(q, one_dog_beside)
    assert good is not None and bad is not None
    assert good.contradictions == 0
    assert bad.contradictions == 2  # one dog, and it is not on the sofa
    assert any("does not match" in t for t, _ in bad.steps)
    assert any("is not on" in t for t, _ in bad.steps)
    # nothing boxed: no claim either way (the classifier may still know it)
    empty = object_match(q, _d())
    assert empty is not None and empty.contradictions == 0 and empty.evidence == 0.0
    assert object_match(parse_query("a house"), two_dogs_on_sofa) is None


def _shots(counts: list[int]) -> list[ViewRecord]:
    out = []
    for i, n in enumerate(counts):
        d = _d(*[("person", 0.8, (20.0 * k, 0.0, 20.0 * k + 15, 40.0)) for k in range(n)])
        out.append(ViewRecord(f"v{i}", "m", "", i, "frame", 2.0 * i, 2.0 * i + 2, None,
                              100, 50, None, d))
    return out


def test_video_counts_per_shot_and_together() -> None:
    frames = _shots([1, 2, 0, 3])
    ref = ResultRef(0, "m", "video", frames[0], frames)
    a = EvidenceQA().answer("how many people are there?", [ref], Resolution([0]))
    assert a.text == ("'person': at most 3 in one shot of result 1 (1 at 0:00, 2 at 0:02, "
                      "0 at 0:04, 3 at 0:06)."), a.text
    assert len(a.boxes) == 6
    a = EvidenceQA().answer("when do two people appear together?", [ref], Resolution([0]))
    assert a.text == "At least 2 'person' appear together in 2 shots: 0:02–0:04, 0:06–0:08.", \
        a.text
    shots = [(float(v.t_start or 0), float(v.t_end or 0), v.description) for v in frames]
    none = answer_temporal("when do two dogs appear together?", shots)
    assert none is not None and none.text.startswith("No shot shows 2 'dog' together")


def test_a_count_the_classifier_contradicts_is_unknown_not_zero() -> None:
    """No 'cat' box but a 'tabby cat' tag: the detector missed the cat (it finds ~6 in 10
    drawn objects), so "0 cats" would be a false answer. With neither, 0 is the answer."""
    from indexer.domain import Tag

    d = _d(("dog", 0.7, (0.0, 0.0, 50.0, 50.0)))
    d.tags = [Tag("tabby cat", 0.62, "classifier")]
    rec = ViewRecord("v0", "m", "", 0, "image", None, None, None, 100, 100, None, d)
    ref = ResultRef(0, "m", "image", rec, [])
    a = EvidenceQA().answer("how many cats are there?", [ref], Resolution([0]))
    assert a.text == "'cat': present in result 1 but not boxed, count unknown.", a.text
    assert [e["type"] for e in a.steps[0].evidence] == ["count", "tag"]
    a = EvidenceQA().answer("how many dogs are there?", [ref], Resolution([0]))
    assert a.text == "'dog': 1 in result 1.", a.text
    a = EvidenceQA().answer("how many elephants are there?", [ref], Resolution([0]))
    assert a.text == "'elephant': 0 in result 1.", a.text


@pytest.mark.parametrize("size", [(1, 1), (20000, 20), (20, 20000)])
def test_degenerate_images_invent_no_objects(cpu_model, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    from indexer.domain import ViewInput

    assert cpu_model.objects is not None and cpu_model.objects.available  # it really looked
    views = [ViewInput("a", Image.new("RGB", size, (0, 0, 0)))]
    enc = cpu_model.encode_views(views)
    # no detector's object (only measured colour shapes, which carry no source, may remain)
    assert [o for o in enc[0].description.objects if o.source] == []


def test_black_and_alpha_only_images_invent_no_objects(cpu_model) -> None:  # type: ignore[no-untyped-def]
    from indexer.domain import ViewInput

    assert cpu_model.objects is not None and cpu_model.objects.available
    black = Image.new("RGB", (640, 480), (0, 0, 0))
    clear = Image.fromarray(np.zeros((480, 640, 4), np.uint8), "RGBA").convert("RGB")
    for im in (black, clear):
        enc = cpu_model.encode_views([ViewInput("a", im)])[0]
        assert [o.label for o in enc.description.objects if o.source] == []
