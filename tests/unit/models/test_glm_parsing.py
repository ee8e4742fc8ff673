"""Pure parsers of the glm backend: grounding boxes, reasoning blocks, steps, JSON."""

from __future__ import annotations

import pytest

from indexer.models.glm.boxes import (
    parse_boxes,
    strip_box_tokens,
    view_index_for_box,
)
from indexer.models.glm.jsonparse import parse_json_output
from indexer.models.glm.text import (
    referenced_views,
    split_thinking,
    steps_from_thinking,
    strip_control,
)

B, E = "<|begin_of_box|>", "<|end_of_box|>"


@pytest.mark.parametrize(
    "inner",
    [
        "[100,200,300,400]",
        "[[100,200,300,400]]",
        "[[100, 200, 300, 400]]",
        "(100,200,300,400)",
        "<100,200,300,400>",
        " [ [100 , 200 ,300, 400 ] ] ",
        "[[100.0,200.0,300.0,400.0]]",
        "[[300,400,100,200]]",  # corners swapped: normalised to x0<x1, y0<y1
    ],
)
def test_one_box_every_bracket_style(inner: str) -> None:
    p = parse_boxes(f"The dog is at {B}{inner}{E}.")
    assert len(p.boxes) == 1
    b = p.boxes[0]
    assert (b.x0, b.y0, b.x1, b.y1) == (100, 200, 300, 400)
    assert p.rejected == []


def test_several_boxes_in_one_span_and_across_spans() -> None:
    text = f"Cars {B}[[0,0,500,500],[500,500,1000,1000]]{E} and a sign {B}[10,20,30,40]{E}"
    p = parse_boxes(text)
    assert [(b.x0, b.y1) for b in p.boxes] == [(0, 500), (500, 1000), (10, 40)]
    assert p.boxes[0].label == "Cars"
    assert p.boxes[2].label.endswith("a sign")
    assert len(p.spans) == 2


def test_pixels_scale_from_0_1000() -> None:
    b = parse_boxes(f"{B}[[250,500,750,1000]]{E}").boxes[0].to_pixels(640, 480)
    assert b.as_list() == [160.0, 240.0, 480.0, 480.0]


def test_out_of_range_is_clamped_and_bad_spans_are_reported() -> None:
    p = parse_boxes(f"a {B}[[-5,0,1200,50]]{E} b {B}[1,2,3]{E} c {B}[]{E} d {B}[[]]{E}")
    assert [(b.x0, b.x1) for b in p.boxes] == [(0, 1000)]
    assert p.rejected == ["[1,2,3]", "[]", "[[]]"]


def test_bare_boxes_only_when_asked_and_only_without_box_tokens() -> None:
    text = "the cat [[100,100,200,200]] and (1,2,3,4)"
    assert parse_boxes(text).boxes == []
    assert len(parse_boxes(text, bare=True).boxes) == 2
    mixed = f"x [[1,1,2,2]] y {B}[5,5,6,6]{E}"
    assert [(b.x0) for b in parse_boxes(mixed, bare=True).boxes] == [5]


def test_no_boxes() -> None:
    p = parse_boxes("nothing to see here, 3 cats and 4 dogs")
    assert p.boxes == [] and p.rejected == []


def test_strip_box_tokens_keeps_coordinates() -> None:
    assert strip_box_tokens(f"car {B}[[1,2,3,4]]{E}") == "car [[1,2,3,4]]"


def test_view_index_for_box() -> None:
    text = f"In image 2 the car {B}[1,1,2,2]{E}.\n\nIn image 1 a dog {B}[3,3,4,4]{E}"
    spans = parse_boxes(text).boxes
    assert [view_index_for_box(text, b.start, 3) for b in spans] == [1, 0]
    assert view_index_for_box(text, spans[0].start, 1) == 0
    assert view_index_for_box("image 9 shows x [1,1,2,2]", 15, 2) == 0  # out of range -> first


def test_split_thinking_closed_open_and_absent() -> None:
    s = split_thinking("<think>look at it.\n\nthen decide</think><answer>A red car</answer>")
    assert s.thinking.startswith("look") and s.answer == "A red car" and not s.truncated
    s = split_thinking("still thinking about", opened=True)
    assert s.thinking == "still thinking about" and s.answer == "" and s.truncated
    s = split_thinking("plain answer<|user|>")
    assert s.thinking == "" and s.answer == "plain answer"
    s = split_thinking("first</think>second", opened=True)
    assert (s.thinking, s.answer) == ("first", "second")


def test_strip_control_tokens() -> None:
    assert strip_control("[gMASK]<sop><|assistant|>hi<|endoftext|>") == "hi"


def test_steps_from_thinking_paragraphs_lines_sentences_and_evidence() -> None:
    ids = ["a", "b"]
    steps = steps_from_thinking("1. Look at image 2.\n\n2. Compare with image 1 and image 7.", ids)
    assert [s.text for s in steps] == ["Look at image 2.", "Compare with image 1 and image 7."]
    assert steps[0].evidence == [{"view_id": "b"}]
    assert steps[1].evidence == [{"view_id": "a"}]
    assert len(steps_from_thinking("one.\ntwo.")) == 2
    assert len(steps_from_thinking("One thing. Another thing! Third?")) == 3
    assert steps_from_thinking("   ") == []


def test_referenced_views() -> None:
    assert referenced_views("image 2 shows it", ["a", "b"]) == ["b"]
    assert referenced_views("no reference", ["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here you go:\n```json\n{"rows": [[1, 2]]}\n```\nDone.', {"rows": [[1, 2]]}),
        (
            'prefix {"pairs": [{"key": "k", "value": "v"}]} suffix',
            {"pairs": [{"key": "k", "value": "v"}]},
        ),
        ("[1, 2, 3]", [1, 2, 3]),
        ('{"s": "brace } inside string", "n": [1]}', {"s": "brace } inside string", "n": [1]}),
        ('{"a": 1,}', {"a": 1}),
        ("{'a': 'b'}", {"a": "b"}),
        ('{"ok": True, "x": None}', {"ok": True, "x": None}),
        ('noise {"small": 1} then {"big": {"nested": [1, 2, 3]}}', {"big": {"nested": [1, 2, 3]}}),
    ],
)
def test_json_parse_ok(text: str, value: object) -> None:
    r = parse_json_output(text)
    assert r.ok, r.error
    assert r.value == value


@pytest.mark.parametrize("text", ["", "   ", "no json here", '{"a": ', "{unquoted: value}"])
def test_json_parse_failure_says_so(text: str) -> None:
    r = parse_json_output(text)
    assert not r.ok
    assert r.value is None
    assert r.error
