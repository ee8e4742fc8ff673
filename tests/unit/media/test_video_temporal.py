"""Temporal questions answered from hand-built, ordered shot descriptions."""

from __future__ import annotations

import pytest

from indexer.domain import Box, Description, DetectedObject, OcrLine, Tag
from indexer.temporal import answer_temporal, fmt_t, parse_time


def _d(*tags: str, caption: str = "", ocr: str = "", obj: str = "",
       boundary: str = "", hier: tuple[str, ...] = ()) -> Description:
    return Description(
        caption=caption,
        tags=[Tag(t, 0.8) for t in tags] + [Tag(h, 0.6, "hierarchy") for h in hier],
        ocr=[OcrLine(ocr, 0.9, Box(0, 0, 5, 5))] if ocr else [],
        objects=[DetectedObject(obj, 0.7, Box(0, 0, 5, 5))] if obj else [],
        extra={"boundary": boundary} if boundary else {},
    )


@pytest.fixture()
def video_shots() -> list[tuple[float, float, Description]]:
    return [
        (0.0, 4.0, _d("beach", "sea", caption="a sandy beach by the sea")),
        (4.0, 9.0, _d("Golden Retriever", "beach", hier=("dog", "animal"))),
        (9.0, 12.0, _d("grass", obj="dog")),
        (12.0, 20.0, _d("car", "road", ocr="SALE 50%")),
        (20.0, 25.0, _d("car", "road", boundary="gap")),
        (25.0, 30.0, _d("Dogs", "park")),
    ]


def _evidence(ans):  # type: ignore[no-untyped-def]
    return [e for s in ans.steps for e in s.evidence]


def test_first_appearance_via_hypernym_tag(video_shots) -> None:  # type: ignore[no-untyped-def]
    ans = answer_temporal("When does the dog first appear?", video_shots)
    assert ans is not None
    assert "0:04" in ans.text
    ev = _evidence(ans)
    assert ev[0] == {"type": "shot", "index": 1, "t_start": 4.0, "t_end": 9.0, "score": 0.6,
                     "tag": "dog", "source": "hierarchy"}
    assert {e["index"] for e in ev} == {1, 2, 5}  # tag, detector object, plural tag


def test_first_appearance_of_on_screen_text(video_shots) -> None:  # type: ignore[no-untyped-def]
    ans = answer_temporal("at what time does sale appear", video_shots)
    assert ans is not None and "0:12" in ans.text
    assert _evidence(ans)[0]["ocr"] == "SALE 50%"


def test_never_appears_is_said_not_invented(video_shots) -> None:  # type: ignore[no-untyped-def]
    ans = answer_temporal("When does the cat first appear?", video_shots)
    assert ans is not None
    assert "does not appear" in ans.text and "6 shots" in ans.text
    assert ans.debug["found"] is False
    assert all(e["type"] != "shot" for e in _evidence(ans))
    dur = answer_temporal("how long is the cat on screen?", video_shots)
    assert dur is not None and "does not appear" in dur.text


def test_before_and_after_subject(video_shots) -> None:  # type: ignore[no-untyped-def]
    after = answer_temporal("What happens after the dog?", video_shots)
    assert after is not None
    # the dog run is shots 1-2 (4-12 s); next is the car shot at 12 s
    assert "shot 3" in after.text and "car" in after.text
    assert _evidence(after)[-1]["index"] == 3
    before = answer_temporal("what happens before the dog appears", video_shots)
    assert before is not None
    assert "sandy beach" in before.text and _evidence(before)[-1]["index"] == 0
    first = answer_temporal("what happens before the beach", video_shots)
    assert first is not None and "opening shot" in first.text


def test_after_a_time_mark(video_shots) -> None:  # type: ignore[no-untyped-def]
    ans = answer_temporal("what happens after 0:12?", video_shots)
    assert ans is not None
    assert [e["index"] for e in _evidence(ans)] == [3, 4]
    assert "SALE 50%" in ans.text
    past = answer_temporal("what happens after 5 minutes", video_shots)
    assert past is not None and "past the end" in past.text


def test_duration_on_screen(video_shots) -> None:  # type: ignore[no-untyped-def]
    ans = answer_temporal("How long is the car on screen?", video_shots)
    assert ans is not None
    assert ans.debug["seconds"] == pytest.approx(13.0)
    assert "13.0 s" in ans.text and "1 stretch" in ans.text
    dog = answer_temporal("for how long is a dog visible", video_shots)
    assert dog is not None and dog.debug["seconds"] == pytest.approx(13.0)  # 4-12 and 25-30
    assert "2 stretches" in dog.text


def test_scene_change_count_ignores_gap_splits(video_shots) -> None:  # type: ignore[no-untyped-def]
    ans = answer_temporal("How many times does the scene change?", video_shots)
    assert ans is not None
    assert ans.debug["count"] == 4  # 5 boundaries, one of them a max-gap split
    assert [e["t"] for e in _evidence(ans)] == [4.0, 9.0, 12.0, 25.0]
    assert answer_temporal("how many cuts are there?", video_shots).debug["count"] == 4  # type: ignore[union-attr]


def test_unordered_input_is_ordered_but_indices_kept(video_shots) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(reversed(video_shots))
    ans = answer_temporal("when does the car first appear", shuffled)
    assert ans is not None and "0:12" in ans.text
    assert _evidence(ans)[0]["index"] == 2  # position in the caller's list


@pytest.mark.parametrize("q", ["what is in this video?", "is there a dog?",
                               "describe the beach", ""])
def test_non_temporal_questions_return_none(video_shots, q: str) -> None:  # type: ignore[no-untyped-def]
    assert answer_temporal(q, video_shots) is None


def test_time_helpers() -> None:
    assert parse_time("0:12") == 12.0 and parse_time("1:02:03") == 3723.0
    assert parse_time("12s") == 12.0 and parse_time("1.5 min") == 90.0
    assert parse_time("soon") is None
    assert fmt_t(12.0) == "0:12" and fmt_t(72.5) == "1:12.5" and fmt_t(3723) == "1:02:03"
