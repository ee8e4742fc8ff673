"""The closer look of follow-up counts and relations: which questions ask for one, and how
its boxes take the place of the index pass's (indexer/reasoning/closer.py). The whole path
through the API and the real detector is in tests/unit/service/test_api_objects.py."""

from __future__ import annotations

import copy

import pytest

from indexer.domain import Box, Description, DetectedObject, Tag
from indexer.reasoning.closer import with_closer_look
from indexer.reasoning.qa import EvidenceQA, box_labels
from indexer.reasoning.refs import Resolution, ResultRef
from indexer.stores.catalog import ViewRecord


@pytest.mark.parametrize(("question", "labels"), [
    ("how many cups are in the first one?", {"cup"}),
    ("How many people are there?", {"person"}),
    ("the one with the sign: how many dogs are in it?", {"dog"}),
    ("is the person left of the bicycle in result 2?", {"person", "bicycle"}),
    ("is the cat on the sofa?", {"cat", "couch"}),
    ("is the dragon above the cup?", {"cup"}),  # only what a detector knows
    ("how many faces are in the first one?", set()),  # faces: not a COCO class
    ("how many dragons are there?", set()),
    ("how many times does the scene change?", set()),
    ("what colour is the cup?", set()),
    ("which of these has a cat?", set()),
])
def test_which_questions_look_closer(question: str, labels: set[str]) -> None:
    assert box_labels(question) == labels


def _ref(objs: list[DetectedObject]) -> ResultRef:
    d = Description(caption="", tags=[Tag("tabby cat", 0.7)], ocr=[], colors={}, extra={},
                    objects=objs)
    rec = ViewRecord("v0", "m", "", 0, "image", None, None, None, 640, 480, None, d)
    return ResultRef(0, "m", "image", rec, [])


def test_the_closer_look_replaces_detector_boxes_and_keeps_the_rest() -> None:
    face = DetectedObject("face", 0.9, Box(10, 10, 40, 40), "mediapipe-blazeface")
    square = DetectedObject("red square", 0.8, Box(300, 300, 340, 340), "colour-shape")
    # the index relabelled a large "dog" box as "cat" by the classifier's evidence
    cat = DetectedObject("cat", 0.74, Box(100, 100, 300, 300), "centernet+classifier",
                         {"detector_label": "dog", "detector_score": 0.41,
                          "classifier_class": "tabby cat", "classifier_score": 0.74})
    cup = DetectedObject("cup", 0.35, Box(400, 50, 440, 90), "centernet")
    ref = _ref([face, square, cat, cup])
    before = copy.deepcopy(ref)
    found = [DetectedObject("dog", 0.45, Box(104, 98, 302, 296), "centernet"),  # same box
             DetectedObject("cup", 0.5, Box(401, 52, 441, 92), "centernet"),
             DetectedObject("cup", 0.4, Box(500, 50, 540, 90), "centernet")]
    out = with_closer_look(ref, found, 640)

    objs = out.view.description.objects
    assert face in objs and square in objs  # not the detector's: untouched
    labels = sorted(o.label for o in objs if o.source.startswith("centernet"))
    assert labels == ["cat", "cup", "cup"]  # the stored cup is replaced, not added to
    relabel = next(o for o in objs if o.label == "cat")
    assert relabel.source == "centernet+classifier"
    assert relabel.box == Box(104, 98, 302, 296)
    assert relabel.extra["detector_label"] == "dog" and relabel.extra["detector_score"] == 0.45
    assert all(o.extra["closer_look_side"] == 640 for o in objs
               if o.source.startswith("centernet"))
    assert out.view.description.extra["closer_look"] == {
        "side": 640, "index_boxes": 2, "closer_boxes": 3}
    assert ref == before  # the cached ref is not changed
    assert found[0].label == "dog" and "closer_look_side" not in found[0].extra

    a = EvidenceQA().answer("how many cups are there?", [out], Resolution([0]))
    assert a.text == "'cup': 2 in result 1.", a.text
    a = EvidenceQA().answer("how many cups are there?", [ref], Resolution([0]))
    assert a.text == "'cup': 1 in result 1.", a.text


def test_a_closer_look_that_finds_nothing_leaves_no_detector_box() -> None:
    # an honest second look can also remove a box: then the count says 0 (or "present but
    # not boxed" where a tag names it), never the index's stale box
    cat = DetectedObject("cat", 0.31, Box(0, 0, 50, 50), "centernet")
    out = with_closer_look(_ref([cat]), [], 640)
    assert out.view.description.objects == []
    a = EvidenceQA().answer("how many cats are there?", [out], Resolution([0]))
    assert a.text == "'cat': present in result 1 but not boxed, count unknown.", a.text
