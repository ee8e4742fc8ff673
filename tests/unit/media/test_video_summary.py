"""Video-level summaries and moments, built only from shot evidence."""

from __future__ import annotations

import pytest

from indexer.domain import Box, Description, DetectedObject, OcrLine, Tag
from indexer.media.video import merge_moments, summarize_shots

B = Box(0, 0, 10, 10)


def _d(tags: dict[str, float], *, ocr: tuple[str, ...] = (), objects: tuple[str, ...] = (),
       hier: tuple[str, ...] = ()) -> Description:
    return Description(
        caption="",
        tags=[Tag(k, v) for k, v in tags.items()] + [Tag(h, 0.9, "hierarchy") for h in hier],
        ocr=[OcrLine(t, 0.8, B) for t in ocr],
        objects=[DetectedObject(o, 0.7, B) for o in objects],
    )


def test_tags_weighted_by_duration_not_shot_count() -> None:
    shots = [
        ((0.0, 20.0), _d({"dog": 0.9}, hier=("animal",))),
        ((20.0, 21.0), _d({"cat": 0.9}, hier=("animal",))),
        ((21.0, 22.0), _d({"cat": 0.9})),
        ((22.0, 30.0), _d({"dog": 0.5, "grass": 0.6})),
    ]
    s = summarize_shots(shots)
    by = {t.label: t for t in s.tags}
    assert by["dog"].score == pytest.approx((0.9 * 20 + 0.5 * 8) / 30, abs=1e-3)
    assert by["cat"].score == pytest.approx(0.9 * 2 / 30, abs=1e-3)
    assert [t.label for t in s.tags][0] == "dog"
    assert by["animal"].source == "hierarchy"
    assert s.extra["tag_shots"]["cat"] == [1, 2]
    assert "dog" in s.caption and "4 shots" in s.caption
    assert "horse" not in s.caption  # nothing that no shot said


def test_ocr_deduplicated_and_objects_counted() -> None:
    shots = [
        ((0.0, 2.0), _d({}, ocr=("BIG  SALE", "50% off"), objects=("person", "person"))),
        ((2.0, 4.0), _d({}, ocr=("big sale",), objects=("person", "car"))),
    ]
    s = summarize_shots(shots)
    assert [o.text for o in s.ocr] == ["BIG SALE", "50% off"]
    assert s.extra["object_counts"]["person"] == {"shots": 2, "max_per_shot": 2, "seconds": 4.0}
    assert s.extra["object_counts"]["car"]["shots"] == 1
    assert s.objects == []


def test_empty_summary() -> None:
    s = summarize_shots([])
    assert s.tags == [] and s.caption == "" and s.extra["shots"] == 0


def test_adjacent_hits_merge_into_moments() -> None:
    hits = [(0.0, 2.0, 0.4), (2.0, 5.0, 0.9), (5.5, 6.0, 0.3), (20.0, 22.0, 0.7)]
    ms = merge_moments(hits, gap_s=1.0)
    assert [(m.t_start, m.t_end) for m in ms] == [(0.0, 6.0), (20.0, 22.0)]
    assert ms[0].score == pytest.approx(0.9)
    assert ms[0].shot_indices == [0, 1, 2] and ms[1].shot_indices == [3]
    # a tighter gap keeps the 0.5 s hole
    assert len(merge_moments(hits, gap_s=0.2)) == 3


def test_moments_accept_unsorted_hits_with_explicit_indices() -> None:
    ms = merge_moments([(10.0, 12.0, 0.5, 7), (0.0, 1.0, 0.2, 2), (12.0, 13.0, 0.6, 8)])
    assert [(m.t_start, m.t_end, m.shot_indices) for m in ms] == [
        (0.0, 1.0, [2]), (10.0, 13.0, [7, 8])]
    assert merge_moments([]) == []
