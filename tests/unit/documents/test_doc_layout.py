"""Reading order (XY-cut) and orientation."""

from __future__ import annotations

import pytest
from PIL import Image

from indexer.documents.layout import (
    detect_rotation,
    layout_blocks,
    reading_order_text,
    rotate_box,
    upright,
)
from indexer.documents.synth import paragraph, text_page
from indexer.domain import Box, OcrLine

LEFT = [paragraph(11, 4, 5), paragraph(12, 3, 5)]
RIGHT = [paragraph(13, 4, 5), paragraph(14, 3, 5)]
TITLE = "Quarterly Field Notes"


@pytest.fixture(scope="module")
def two_col(ocr):  # type: ignore[no-untyped-def]
    s = text_page([LEFT, RIGHT], title=TITLE)
    return s.image, ocr.read(s.image)


def _words(text: str) -> list[str]:
    return text.lower().split()


def test_two_column_page_reads_left_column_then_right(two_col) -> None:  # type: ignore[no-untyped-def]
    _img, lines = two_col
    blocks = layout_blocks(lines)
    assert blocks[0].text.lower() == TITLE.lower()
    expected = LEFT + RIGHT
    body = blocks[1:]
    assert len(body) == len(expected)
    for blk, para in zip(body, expected, strict=True):
        got, want = _words(blk.text), _words(para)
        same = sum(g == w for g, w in zip(got, want, strict=False))
        assert same >= 0.9 * len(want), (blk.text, para)
    assert [b.column for b in body] == [0, 0, 1, 1]
    # every left-column block lies left of every right-column block
    assert max(b.box.x1 for b in body[:2]) < min(b.box.x0 for b in body[2:])


def test_xy_cut_on_synthetic_boxes_is_columnar() -> None:
    def ln(t: str, x: float, y: float, w: float = 200) -> OcrLine:
        return OcrLine(t, 1.0, Box(x, y, x + w, y + 20))

    lines = [ln("a1", 0, 0), ln("b1", 300, 0), ln("a2", 0, 26), ln("b2", 300, 26),
             ln("a3", 0, 52), ln("b3", 300, 52), ln("footer", 0, 140, 500)]
    text = reading_order_text(layout_blocks(lines))
    assert text.split() == ["a1", "a2", "a3", "b1", "b2", "b3", "footer"]


def test_single_column_paragraphs_split_on_blank_lines() -> None:
    lines = [OcrLine(f"l{i}", 1.0, Box(0, y, 300, y + 20))
             for i, y in enumerate([0, 26, 52, 120, 146])]
    blocks = layout_blocks(lines)
    assert [b.text.split("\n") for b in blocks] == [["l0", "l1", "l2"], ["l3", "l4"]]


@pytest.mark.parametrize("angle", [90, 180, 270])
def test_rotated_page_is_detected_and_turned_upright(two_col, ocr, angle: int) -> None:  # type: ignore[no-untyped-def]
    img, _ = two_col
    turned = img.rotate(angle, expand=True)
    lines = ocr.read(turned)
    up_img, up_lines, used = upright(turned, lines, ocr=ocr)
    assert (used + angle) % 360 == 0, (angle, used)
    assert up_img.size == img.size
    words = _words(reading_order_text(layout_blocks(up_lines)))
    assert words[:3] == _words(TITLE)
    # left column before right column
    first_left, first_right = _words(LEFT[0])[0], _words(RIGHT[0])[0]
    assert words.index(first_left) < words.index(first_right)
    if angle == 180:  # the ink vote alone (no OCR re-read) finds upside-down pages
        assert detect_rotation(turned, lines)[0] == 180


def test_upright_page_needs_no_rotation(two_col) -> None:  # type: ignore[no-untyped-def]
    img, lines = two_col
    assert detect_rotation(img, lines)[0] == 0
    assert upright(img, lines)[2] == 0


def test_rotate_box_round_trips() -> None:
    b = Box(10, 20, 50, 40)
    w, h = 200, 100
    for a in (90, 180, 270):
        r = rotate_box(b, a, w, h)
        size = (h, w) if a in (90, 270) else (w, h)
        back = rotate_box(r, 360 - a, *size)
        assert back == b
    # agrees with PIL: a black box lands where rotate_box says
    img = Image.new("L", (w, h), 255)
    img.paste(0, (10, 20, 50, 40))
    r = rotate_box(b, 90, w, h)
    rot = img.rotate(90, expand=True)
    assert rot.getpixel((int(r.center[0]), int(r.center[1]))) == 0


def test_no_lines_gives_no_blocks() -> None:
    assert layout_blocks([]) == []
    assert detect_rotation(Image.new("RGB", (50, 50), "white"), []) == (0, 0.0)
