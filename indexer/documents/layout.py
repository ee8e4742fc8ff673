"""Lines with boxes -> blocks in reading order, and page orientation.

Reading order: recursive XY-cut. At every node the widest whitespace gap is cut, either a
vertical gutter (column split, left before right) or a horizontal band (top before bottom).
Gaps are measured in units of the median line height: a gutter must be at least
`col_gap` line heights wide, a band at least `block_gap` high; inter-line spacing inside a
paragraph is smaller than both, so a paragraph stays one block and a two-column page reads
the whole left column before the right one, while a full-width title above is cut first.

Orientation (chosen approach, no extra OCR calls): the OCR engine already reads text turned
by 90/180/270 degrees (its boxes then are tall for sideways text), so we do not re-OCR
rotations. We vote with a typographic cue instead: in upright Latin text and digits the
ascender/cap zone at the top of a line holds more ink than the descender zone at the bottom.
For each line box we compare the ink in its outer quarters along the line's height axis
(top vs bottom for wide boxes, left vs right for tall ones); the weighted majority gives
the rotation that makes the page upright. Boxes are then mapped onto the rotated image.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from indexer.domain import Box, OcrLine


@dataclass
class Block:
    text: str
    box: Box
    lines: list[OcrLine] = field(default_factory=list)
    column: int = 0  # index of the column (left to right) the XY-cut put it in, at top level

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "box": self.box.as_list(), "column": self.column,
                "lines": [ln.text for ln in self.lines]}


def _median_height(lines: list[OcrLine]) -> float:
    hs = [ln.box.y1 - ln.box.y0 for ln in lines if ln.box.y1 > ln.box.y0]
    return statistics.median(hs) if hs else 10.0


def _gaps(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Uncovered gaps between the union of intervals, as (start, end)."""
    ivs = sorted(intervals)
    gaps: list[tuple[float, float]] = []
    if not ivs:
        return gaps
    cur_end = ivs[0][1]
    for a, b in ivs[1:]:
        if a > cur_end:
            gaps.append((cur_end, a))
        cur_end = max(cur_end, b)
    return gaps


def _group_rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Lines whose vertical extents overlap by half the smaller height share a row."""
    rows: list[list[OcrLine]] = []
    for ln in sorted(lines, key=lambda x: (x.box.center[1], x.box.x0)):
        placed = False
        for row in rows[-3:]:
            ref = row[0].box
            ov = min(ref.y1, ln.box.y1) - max(ref.y0, ln.box.y0)
            h = min(ref.y1 - ref.y0, ln.box.y1 - ln.box.y0)
            if h > 0 and ov >= 0.5 * h:
                row.append(ln)
                placed = True
                break
        if not placed:
            rows.append([ln])
    for row in rows:
        row.sort(key=lambda x: x.box.x0)
    rows.sort(key=lambda r: min(x.box.y0 for x in r))
    return rows


def group_rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Public: lines grouped into visual rows, top to bottom, each left to right."""
    return _group_rows(lines)


def _union(lines: list[OcrLine]) -> Box:
    return Box(min(ln.box.x0 for ln in lines), min(ln.box.y0 for ln in lines),
               max(ln.box.x1 for ln in lines), max(ln.box.y1 for ln in lines))


def _xy_cut(lines: list[OcrLine], h: float, col_gap: float, block_gap: float,
            depth: int = 0) -> list[tuple[list[OcrLine], int]]:
    """Returns leaves (lines of one block, column index at the first vertical cut)."""
    if len(lines) <= 1 or depth > 40:
        return [(lines, 0)]
    xg = _gaps([(ln.box.x0, ln.box.x1) for ln in lines])
    yg = _gaps([(ln.box.y0, ln.box.y1) for ln in lines])
    best_x = max(xg, key=lambda g: g[1] - g[0], default=None)
    best_y = max(yg, key=lambda g: g[1] - g[0], default=None)
    wx = (best_x[1] - best_x[0]) / h if best_x else 0.0
    wy = (best_y[1] - best_y[0]) / h if best_y else 0.0
    # a gutter must also separate real columns: both sides hold several lines
    if best_x is not None and wx >= col_gap:
        cut = (best_x[0] + best_x[1]) / 2
        left = [ln for ln in lines if ln.box.center[0] < cut]
        right = [ln for ln in lines if ln.box.center[0] >= cut]
        if min(len(left), len(right)) < 2 and wy >= block_gap:
            wx = 0.0  # one stray box beside a column: prefer the horizontal cut
    if wx >= col_gap and (wx / col_gap >= wy / block_gap or wy < block_gap):
        assert best_x is not None
        cut = (best_x[0] + best_x[1]) / 2
        left = [ln for ln in lines if ln.box.center[0] < cut]
        right = [ln for ln in lines if ln.box.center[0] >= cut]
        out = [(b, 0) for b, _ in _xy_cut(left, h, col_gap, block_gap, depth + 1)]
        out += [(b, 1) for b, _ in _xy_cut(right, h, col_gap, block_gap, depth + 1)]
        return out
    if wy >= block_gap:
        assert best_y is not None
        cut = (best_y[0] + best_y[1]) / 2
        top = [ln for ln in lines if ln.box.center[1] < cut]
        bottom = [ln for ln in lines if ln.box.center[1] >= cut]
        return _xy_cut(top, h, col_gap, block_gap, depth + 1) + _xy_cut(
            bottom, h, col_gap, block_gap, depth + 1)
    return [(lines, 0)]


def layout_blocks(lines: list[OcrLine], *, col_gap: float = 1.5,
                  block_gap: float = 0.9) -> list[Block]:
    """Blocks in reading order. Gaps are in median-line-height units (see module doc)."""
    lines = [ln for ln in lines if ln.text.strip() and ln.box.area > 0]
    if not lines:
        return []
    h = _median_height(lines)
    blocks: list[Block] = []
    for leaf, col in _xy_cut(lines, h, col_gap, block_gap):
        if not leaf:
            continue
        rows = _group_rows(leaf)
        ordered = [ln for row in rows for ln in row]
        text = "\n".join(" ".join(ln.text for ln in row) for row in rows)
        blocks.append(Block(text=text, box=_union(ordered), lines=ordered, column=col))
    return blocks


def reading_order_text(blocks: list[Block]) -> str:
    return "\n\n".join(b.text for b in blocks)


# --- orientation -------------------------------------------------------------------------


def _ink(gray: np.ndarray) -> np.ndarray:
    """Ink weight per pixel: dark-on-light or light-on-dark, whichever is the minority."""
    g = gray.astype(np.float32) / 255.0
    ink = 1.0 - g
    if ink.mean() > 0.5:
        ink = g
    return ink


def detect_rotation(image: Image.Image, lines: list[OcrLine]) -> tuple[int, float]:
    """Counter-clockwise degrees (0/90/180/270) that make the page upright, and a confidence
    in [0, 1] (the vote margin). Feed PIL `image.rotate(angle, expand=True)`."""
    gray = np.asarray(image.convert("L"))
    H, W = gray.shape
    votes = {0: 0.0, 90: 0.0, 180: 0.0, 270: 0.0}
    for ln in lines:
        if len(ln.text.strip()) < 3:
            continue
        x0, y0 = max(0, int(ln.box.x0)), max(0, int(ln.box.y0))
        x1, y1 = min(W, int(round(ln.box.x1))), min(H, int(round(ln.box.y1)))
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        ink = _ink(gray[y0:y1, x0:x1])
        weight = float(len(ln.text.strip()))
        if (x1 - x0) >= (y1 - y0):  # horizontal line of text: profile over rows
            prof = ink.sum(axis=1)
            q = max(1, len(prof) // 4)
            top, bottom = float(prof[:q].sum()), float(prof[-q:].sum())
            if top + bottom <= 0:
                continue
            votes[0 if top >= bottom else 180] += weight * abs(top - bottom) / (top + bottom)
        else:  # sideways: glyph tops point left (text turned 90 CCW) or right (90 CW)
            prof = ink.sum(axis=0)
            q = max(1, len(prof) // 4)
            left, right = float(prof[:q].sum()), float(prof[-q:].sum())
            if left + right <= 0:
                continue
            # tops to the left: the page was turned 90 CCW; rotating it 270 CCW fixes it
            votes[270 if left >= right else 90] += weight * abs(left - right) / (left + right)
    total = sum(votes.values())
    if total <= 0:
        return 0, 0.0
    best = max(votes, key=lambda k: votes[k])
    return best, votes[best] / total


def rotate_box(box: Box, angle: int, width: int, height: int) -> Box:
    """Map a box on a (width x height) image onto the image rotated `angle` CCW, expand=True."""
    a = angle % 360
    if a == 0:
        return box
    if a == 90:  # (x, y) -> (y, W - x)
        return Box(box.y0, width - box.x1, box.y1, width - box.x0)
    if a == 180:
        return Box(width - box.x1, height - box.y1, width - box.x0, height - box.y0)
    if a == 270:  # (x, y) -> (H - y, x)
        return Box(height - box.y1, box.x0, height - box.y0, box.x1)
    raise ValueError("angle must be a multiple of 90")


def _sideways_share(lines: list[OcrLine]) -> float:
    tall = total = 0.0
    for ln in lines:
        w = len(ln.text.strip())
        if w < 3:
            continue
        total += w
        if (ln.box.y1 - ln.box.y0) > 1.5 * (ln.box.x1 - ln.box.x0):
            tall += w
    return tall / total if total else 0.0


def _read_quality(lines: list[OcrLine]) -> float:
    return sum(ln.score * len(ln.text.strip()) for ln in lines
               if (ln.box.x1 - ln.box.x0) >= (ln.box.y1 - ln.box.y0))


# A proposed turn is kept when the turned page's recognition quality (confidence x length of
# horizontal lines) beats the page as it came by this factor.
TURN_MARGIN = 1.15
# Mean recognition confidence under which an "upright" page is read again turned: upright
# print reads at ~0.95-1.0, the same page upside down at ~0.6 (libtasn1 manual, 150 dpi).
WEAK_READ = 0.8


def _mean_score(lines: list[OcrLine]) -> float:
    return sum(ln.score for ln in lines) / max(1, len(lines))


class _Reader(Protocol):
    def read(self, image: Image.Image) -> list[OcrLine]: ...


def upright(image: Image.Image, lines: list[OcrLine], *, ocr: _Reader | None = None,
            min_confidence: float = 0.45) -> tuple[Image.Image, list[OcrLine], int]:
    """Rotate page and boxes upright; returns (image, lines, angle CCW).

    Sideways pages (most text boxes tall): with an OCR engine, both quarter turns are read
    and the one with more confident horizontal text wins (two extra reads, only for such
    pages); without one, the ink vote decides. Upside-down pages: the ink vote proposes, and
    with an OCR engine the turned page is read and kept only if it reads clearly better than
    the page as it came (else boxes are mapped on the ink vote alone)."""
    if ocr is not None and _sideways_share(lines) > 0.5:
        trials = []
        for a in (90, 270):
            img = image.rotate(a, expand=True)
            found = ocr.read(img)
            trials.append((_read_quality(found), a, img, found))
        _q, a, img, found = max(trials, key=lambda t: t[0])
        back, conf = detect_rotation(img, found)
        if back == 180 and conf >= min_confidence:
            a = (a + 180) % 360
            img = image.rotate(a, expand=True)
            W, H = img.size
            found = [OcrLine(ln.text, ln.score, rotate_box(ln.box, 180, W, H)) for ln in found]
        return img, found, a
    angle, conf = detect_rotation(image, lines)
    if ocr is not None and (angle == 0 or conf < min_confidence) and lines and \
            _mean_score(lines) < WEAK_READ:
        # the ink vote is font-dependent; text read with low confidence is the other sign
        # of an upside-down page, so try the half turn and let recognition decide below
        angle, conf = 180, 1.0
    if angle == 0 or conf < min_confidence:
        return image, lines, 0
    W, H = image.size
    rotated = image.rotate(angle, expand=True)
    if ocr is not None:
        # the ink vote only proposes; recognition decides. Read the turned page and keep
        # the turn only when it reads clearly better than the page as it came (an upright
        # prose page with a formula can fool the ink vote; the turn must never make the
        # text worse)
        found = ocr.read(rotated)
        if _read_quality(found) > TURN_MARGIN * _read_quality(lines):
            return rotated, found, angle
        return image, lines, 0
    moved = [OcrLine(ln.text, ln.score, rotate_box(ln.box, angle, W, H)) for ln in lines]
    return rotated, moved, angle
