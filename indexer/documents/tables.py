"""Table detection and cell recovery.

Two detectors, ruled first:
1. Ruling lines: OpenCV morphology (long horizontal and vertical strokes) gives the grid;
   rows/columns are the gaps between ruling positions; OCR boxes fall into cells by their
   centre. An OCR box that spans several cells is re-read cell by cell when an OCR engine is
   given (it happens when cell text sits close to a thin rule).
2. Alignment (no rules): OCR boxes are grouped into rows; runs of consecutive rows with at
   least two boxes whose x-extents share the same whitespace gutters form a table; columns
   are the gaps of the x-projection of all boxes in the run.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from PIL import Image

from indexer.documents.layout import group_rows
from indexer.domain import Box, OcrLine

log = logging.getLogger(__name__)


class _Reader(Protocol):
    def read(self, image: Image.Image) -> list[OcrLine]: ...


@dataclass
class Table:
    rows: list[list[str]]
    box: Box
    ruled: bool
    cell_boxes: list[list[list[float]]] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "box": self.box.as_list(), "ruled": self.ruled,
                "n_rows": self.n_rows, "n_cols": self.n_cols}


def table_to_csv(table: Table | dict[str, Any]) -> str:
    """CSV text (RFC 4180 quoting, \\r\\n line ends) of one table."""
    rows = table.rows if isinstance(table, Table) else table["rows"]
    buf = io.StringIO()
    w = csv.writer(buf)
    for row in rows:
        w.writerow(row)
    return buf.getvalue()


# --- ruled tables --------------------------------------------------------------------------


def _positions(profile: np.ndarray, thresh: float) -> list[float]:
    """Centres of runs where profile >= thresh."""
    on = profile >= thresh
    out: list[float] = []
    i, n = 0, len(on)
    while i < n:
        if on[i]:
            j = i
            while j + 1 < n and on[j + 1]:
                j += 1
            out.append((i + j) / 2)
            i = j + 1
        else:
            i += 1
    return out


def _ruling_masks(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    bw = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                               15, 10)
    H, W = gray.shape
    hk = cv2.getStructuringElement(cv2.MORPH_RECT, (max(15, W // 25), 1))
    vk = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(15, H // 40)))
    horiz = cv2.morphologyEx(bw, cv2.MORPH_OPEN, hk)
    vert = cv2.morphologyEx(bw, cv2.MORPH_OPEN, vk)
    return horiz, vert


def _ruled_tables(image: Image.Image, lines: list[OcrLine], ocr: _Reader | None) -> list[Table]:
    import cv2

    gray = np.asarray(image.convert("L"))
    horiz, vert = _ruling_masks(gray)
    grid = cv2.dilate(cv2.bitwise_or(horiz, vert), np.ones((3, 3), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    tables: list[Table] = []
    for k in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[k])
        if w < 40 or h < 20:
            continue
        hsub = horiz[y:y + h, x:x + w] > 0
        vsub = vert[y:y + h, x:x + w] > 0
        ys = _positions(hsub.sum(axis=1).astype(float), 0.5 * w)
        xs = _positions(vsub.sum(axis=0).astype(float), 0.5 * h)
        if len(ys) < 2:
            continue
        if len(xs) < 2:
            # only horizontal rules (a "booktabs" table): columns from text alignment
            inside = [ln for ln in lines if x <= ln.box.center[0] <= x + w
                      and y <= ln.box.center[1] <= y + h]
            cols = _column_gutters(group_rows(inside))
            if not cols:
                continue
            xs = [0.0, *[c - x for c in cols], float(w)]
        ys = [y + v for v in ys]
        xs = [x + v for v in xs]
        t = _fill_grid(image, lines, xs, ys, ocr)
        if t is not None and t.n_rows >= 1 and t.n_cols >= 2:
            tables.append(t)
    return tables


def _fill_grid(image: Image.Image, lines: list[OcrLine], xs: list[float], ys: list[float],
               ocr: _Reader | None) -> Table | None:
    nr, nc = len(ys) - 1, len(xs) - 1
    if nr < 1 or nc < 1:
        return None
    cells: list[list[list[OcrLine]]] = [[[] for _ in range(nc)] for _ in range(nr)]
    spanning: set[tuple[int, int]] = set()
    for ln in lines:
        cx, cy = ln.box.center
        if not (xs[0] <= cx <= xs[-1] and ys[0] <= cy <= ys[-1]):
            continue
        r = int(np.searchsorted(ys, cy) - 1)
        c = int(np.searchsorted(xs, cx) - 1)
        r, c = min(max(r, 0), nr - 1), min(max(c, 0), nc - 1)
        # a box crossing a vertical rule by more than a few pixels spans cells
        crosses = [j for j in range(1, nc) if ln.box.x0 + 4 < xs[j] < ln.box.x1 - 4]
        if crosses:
            c0 = int(np.searchsorted(xs, ln.box.x0 + 4) - 1)
            c1 = int(np.searchsorted(xs, ln.box.x1 - 4) - 1)
            for cc in range(max(c0, 0), min(c1, nc - 1) + 1):
                spanning.add((r, cc))
        cells[r][c].append(ln)
    if spanning and ocr is not None:
        for r, c in sorted(spanning):
            crop = image.crop((int(xs[c]) + 2, int(ys[r]) + 2, int(xs[c + 1]) - 1,
                               int(ys[r + 1]) - 1))
            if crop.width < 4 or crop.height < 4:
                continue
            pad = Image.new("RGB", (crop.width + 16, crop.height + 16), "white")
            pad.paste(crop.convert("RGB"), (8, 8))
            found = ocr.read(pad)
            cells[r][c] = [OcrLine(f.text, f.score, Box(f.box.x0 + xs[c], f.box.y0 + ys[r],
                                                        f.box.x1 + xs[c], f.box.y1 + ys[r]))
                           for f in found]
        # drop the spanning originals from the other cells they were filed under
        for r, c in spanning:
            cells[r][c] = [ln for ln in cells[r][c]
                           if not any(ln.box.x0 + 4 < xs[j] < ln.box.x1 - 4 for j in range(1, nc))]
    rows = [[_cell_text(cells[r][c]) for c in range(nc)] for r in range(nr)]
    # drop rows that are entirely empty (double rules, header underlines)
    keep = [i for i, row in enumerate(rows) if any(v for v in row)]
    if not keep:
        return None
    rows = [rows[i] for i in keep]
    boxes = [[[xs[c], ys[r], xs[c + 1], ys[r + 1]] for c in range(nc)] for r in keep]
    return Table(rows=rows, box=Box(xs[0], ys[0], xs[-1], ys[-1]), ruled=True, cell_boxes=boxes)


def _cell_text(lines: list[OcrLine]) -> str:
    if not lines:
        return ""
    rows = group_rows(lines)
    return " ".join(" ".join(ln.text for ln in row) for row in rows).strip()


# --- alignment tables ----------------------------------------------------------------------


def _column_gutters(rows: list[list[OcrLine]], min_gap: float = 8.0) -> list[float]:
    """x-centres of gutters that no box in `rows` crosses."""
    ivs = [(ln.box.x0, ln.box.x1) for row in rows for ln in row]
    if not ivs:
        return []
    ivs.sort()
    gutters: list[float] = []
    end = ivs[0][1]
    for a, b in ivs[1:]:
        if a - end >= min_gap:
            gutters.append((a + end) / 2)
        end = max(end, b)
    return gutters


def _aligned_tables(lines: list[OcrLine], min_rows: int = 3) -> list[Table]:
    rows = group_rows(lines)
    if not rows:
        return []
    heights = sorted(ln.box.y1 - ln.box.y0 for ln in lines)
    lh = heights[len(heights) // 2]
    tables: list[Table] = []
    i = 0
    while i < len(rows):
        if len(rows[i]) < 2:
            i += 1
            continue
        # grow a run of multi-box rows that keeps >= 2 shared gutters
        j = i + 1
        run = [rows[i]]
        while j < len(rows):
            cand = run + [rows[j]]
            gap = min(ln.box.y0 for ln in rows[j]) - max(ln.box.y1 for ln in run[-1])
            if gap > 2.5 * lh:
                break
            if len(_column_gutters(cand, min_gap=0.6 * lh)) < 1:
                break
            if len(rows[j]) < 2 and len(run) > 0:
                # a single-box row inside a table is allowed only if it fits one column
                pass
            run = cand
            j += 1
        multi = sum(1 for r in run if len(r) >= 2)
        if len(run) >= min_rows and multi >= min_rows - 1:
            t = _aligned_table(run, lh)
            if t is not None and t.n_cols >= 2:
                tables.append(t)
            i = j
        else:
            i += 1
    return tables


def _aligned_table(run: list[list[OcrLine]], lh: float) -> Table | None:
    gutters = _column_gutters(run, min_gap=0.6 * lh)
    if not gutters:
        return None
    x0 = min(ln.box.x0 for r in run for ln in r)
    x1 = max(ln.box.x1 for r in run for ln in r)
    xs = [x0 - 1, *gutters, x1 + 1]
    out: list[list[str]] = []
    boxes: list[list[list[float]]] = []
    for row in run:
        cells: list[list[OcrLine]] = [[] for _ in range(len(xs) - 1)]
        for ln in row:
            c = int(np.searchsorted(xs, ln.box.center[0]) - 1)
            cells[min(max(c, 0), len(cells) - 1)].append(ln)
        out.append([_cell_text(c) for c in cells])
        y0 = min(ln.box.y0 for ln in row)
        y1 = max(ln.box.y1 for ln in row)
        boxes.append([[xs[c], y0, xs[c + 1], y1] for c in range(len(xs) - 1)])
    y0 = min(ln.box.y0 for ln in run[0])
    y1 = max(ln.box.y1 for ln in run[-1])
    return Table(rows=out, box=Box(x0, y0, x1, y1), ruled=False, cell_boxes=boxes)


def detect_tables(image: Image.Image, lines: list[OcrLine], *, ocr: _Reader | None = None,
                  min_rows: int = 3) -> list[Table]:
    """Tables on one page: ruled grids first, then aligned text outside those grids."""
    tables = _ruled_tables(image, lines, ocr)
    taken = [t.box for t in tables]

    def outside(ln: OcrLine) -> bool:
        cx, cy = ln.box.center
        return not any(b.x0 <= cx <= b.x1 and b.y0 <= cy <= b.y1 for b in taken)

    tables += _aligned_tables([ln for ln in lines if outside(ln)], min_rows=min_rows)
    tables.sort(key=lambda t: (t.box.y0, t.box.x0))
    log.debug("found %d tables (%d ruled)", len(tables), sum(t.ruled for t in tables))
    return tables
