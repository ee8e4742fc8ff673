"""Chart reading from pixels + OCR boxes: bar (vertical and horizontal), line, pie.

Pipeline:
1. Plot box from long dark axis strokes (OpenCV morphology on the dark mask).
2. Classification: pie = one large coloured blob shaped like a disk (fill of its bounding
   box ~ pi/4, square) holding several hues; bar = >= 2 solid coloured rectangles inside the
   plot box sharing one baseline edge; line = thin coloured strokes spanning the plot width;
   otherwise "other".
3. Text roles from OCR box positions: numeric labels left of the plot = y ticks, below = x
   ticks; text above the plot = title; text below the x ticks = x label; text left of the y
   ticks = y label (OCR reads sideways text; when it did not, the strip is turned and re-read
   if an OCR engine is given); text right of small coloured patches inside the plot = legend.
4. Calibration: least-squares line pixel -> value over the numeric ticks, each label snapped
   to its tick mark when one is found beside the axis; one outlier is dropped when >= 4 ticks.
5. Values: bar extents use sub-pixel edges (anti-aliased coverage of the first/last row or
   column); the value is the calibrated position of the edge away from the shared baseline.
   Lines: the stroke's centre row at each x tick. Pie: pixel share of each colour cluster
   inside the disk, labelled by the nearest label angle.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from indexer.documents.kv import parse_number
from indexer.domain import Box, OcrLine

log = logging.getLogger(__name__)

CHART_TYPES = ("bar", "line", "pie", "other")


class _Reader(Protocol):
    def read(self, image: Image.Image) -> list[OcrLine]: ...


@dataclass
class _Comp:
    x0: int
    y0: int
    x1: int  # inclusive
    y1: int  # inclusive
    area: int
    color: tuple[float, float, float]

    @property
    def w(self) -> int:
        return self.x1 - self.x0 + 1

    @property
    def h(self) -> int:
        return self.y1 - self.y0 + 1

    @property
    def fill(self) -> float:
        return self.area / float(self.w * self.h)


def _num(text: str) -> float | None:
    t = text.strip().replace("%", "").replace("−", "-").replace("—", "-").replace("–", "-")
    t = re.sub(r"^[^\d+\-(]+|[^\d)]+$", "", t)  # currency symbols, units
    if not t:
        return None
    return parse_number(t)


def _saturation(arr: np.ndarray) -> np.ndarray:
    a = arr.astype(np.int16)
    return (a.max(axis=2) - a.min(axis=2)).astype(np.float32)


def _plot_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the axes from long dark strokes, or None."""
    import cv2

    H, W = gray.shape
    dark = (gray < 110).astype(np.uint8) * 255
    horiz = cv2.morphologyEx(dark, cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_RECT, (max(20, W // 4), 1)))
    vert = cv2.morphologyEx(dark, cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(20, H // 4))))
    rows = np.where((horiz > 0).sum(axis=1) > W // 4)[0]
    cols = np.where((vert > 0).sum(axis=0) > H // 4)[0]
    if len(rows) == 0 or len(cols) == 0:
        return None
    left, right = int(cols.min()), int(cols.max())
    top, bottom = int(rows.min()), int(rows.max())
    if right - left < W // 6:  # only one vertical spine: the plot extends to the longest h line
        hx = np.where((horiz > 0).any(axis=0))[0]
        right = int(hx.max()) if len(hx) else right
    if bottom - top < H // 6:
        vy = np.where((vert > 0).any(axis=1))[0]
        top = int(vy.min()) if len(vy) else top
    if right - left < 20 or bottom - top < 20:
        return None
    return left, top, right, bottom


def _components(mask: np.ndarray, arr: np.ndarray, min_area: int = 12) -> list[_Comp]:
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    out: list[_Comp] = []
    for k in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[k])
        if area < min_area:
            continue
        sel = labels[y:y + h, x:x + w] == k
        col = arr[y:y + h, x:x + w][sel].reshape(-1, 3).mean(axis=0)
        out.append(_Comp(x, y, x + w - 1, y + h - 1, area,
                         (float(col[0]), float(col[1]), float(col[2]))))
    return out


def _color_dist(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=False))))


def _fit(pairs: list[tuple[float, float]]) -> tuple[float, float] | None:
    """value = a * pixel + b, robust to one bad label."""
    if len(pairs) < 2:
        return None
    px = np.array([p for p, _ in pairs], dtype=np.float64)
    vals = np.array([v for _, v in pairs], dtype=np.float64)
    if np.ptp(px) < 5 or np.ptp(vals) == 0:
        return None
    a, b = np.polyfit(px, vals, 1)
    if len(pairs) >= 4:
        res = np.abs(a * px + b - vals)
        worst = int(res.argmax())
        if res[worst] > 0.02 * np.ptp(vals):
            keep = np.arange(len(px)) != worst
            a, b = np.polyfit(px[keep], vals[keep], 1)
    return float(a), float(b)


def _tick_marks(gray: np.ndarray, axis: str, pos: int, lo: int, hi: int) -> list[float]:
    """Centres (continuous coordinates) of short tick marks just outside an axis line."""
    H, W = gray.shape
    if axis == "y":  # ticks left of the vertical axis at x=pos
        xs = [x for x in (pos - 3, pos - 4) if 0 <= x < W]
        if not xs:
            return []
        line = np.min(np.stack([gray[lo:hi, x] for x in xs]), axis=0) < 110
        base = lo
    else:  # ticks below the horizontal axis at y=pos
        ys = [y for y in (pos + 3, pos + 4) if 0 <= y < H]
        if not ys:
            return []
        line = np.min(np.stack([gray[y, lo:hi] for y in ys]), axis=0) < 110
        base = lo
    out: list[float] = []
    i = 0
    while i < len(line):
        if line[i]:
            j = i
            while j + 1 < len(line) and line[j + 1]:
                j += 1
            if j - i < 6:
                out.append(base + (i + j) / 2 + 0.5)
            i = j + 1
        else:
            i += 1
    return out


def _snap(p: float, marks: list[float], tol: float) -> float:
    if not marks:
        return p
    m = min(marks, key=lambda q: abs(q - p))
    return m if abs(m - p) <= tol else p


def _split_numeric(ln: OcrLine, horizontal: bool) -> list[tuple[float, float]]:
    """(pixel centre, value) for each number in a line; a line OCR merged from several tick
    labels ("0 20 40") is split and positions interpolated by character offset."""
    toks = ln.text.split()
    if len(toks) <= 1 or not horizontal:
        v = _num(ln.text)
        if v is None:
            return []
        c = ln.box.center[0] if horizontal else ln.box.center[1]
        return [(c, v)]
    vals = [_num(t) for t in toks]
    if any(v is None for v in vals):
        return []
    n = len(ln.text)
    out: list[tuple[float, float]] = []
    pos = 0
    for t, v in zip(toks, vals, strict=False):
        start = ln.text.index(t, pos)
        pos = start + len(t)
        mid = (start + pos) / 2 / n
        out.append((ln.box.x0 + mid * (ln.box.x1 - ln.box.x0), float(v)))  # type: ignore[arg-type]
    return out


def _edges(cov: np.ndarray) -> tuple[float, float] | None:
    """Sub-pixel start/end (continuous coordinates) of the run in a coverage profile."""
    on = np.where(cov >= 0.5)[0]
    if len(on) == 0:
        return None
    i0, i1 = int(on[0]), int(on[-1])
    start = i0 + 1.0 - float(cov[i0]) - (float(cov[i0 - 1]) if i0 > 0 else 0.0)
    end = i1 + float(cov[i1]) + (float(cov[i1 + 1]) if i1 + 1 < len(cov) else 0.0)
    return start, end


def _coverage(arr: np.ndarray, color: tuple[float, float, float], bg: tuple[float, float, float],
              axis_slice: np.ndarray) -> np.ndarray:
    """Fraction of `color` over `bg` per pixel of a 1-D strip of RGB pixels."""
    c = np.asarray(color, dtype=np.float32)
    b = np.asarray(bg, dtype=np.float32)
    d = c - b
    denom = float((d * d).sum()) or 1.0
    px = axis_slice.astype(np.float32)
    t = ((px - b) * d).sum(axis=-1) / denom
    return np.clip(t, 0.0, 1.0)


class ChartReader:
    def __init__(self, image: Image.Image, lines: list[OcrLine], ocr: _Reader | None = None):
        self.image = image.convert("RGB")
        self.arr = np.asarray(self.image)
        self.gray = np.asarray(self.image.convert("L"))
        self.lines = [ln for ln in lines if ln.text.strip()]
        self.ocr = ocr
        self.H, self.W = self.gray.shape
        hs = sorted(ln.box.y1 - ln.box.y0 for ln in self.lines if ln.box.x1 - ln.box.x0 >=
                    ln.box.y1 - ln.box.y0)
        self.lh = hs[len(hs) // 2] if hs else 16.0
        self.warnings: list[str] = []

    # --- classification ---------------------------------------------------------------

    def _pie(self) -> dict[str, Any] | None:
        import cv2

        sat = _saturation(self.arr)
        # colours only: dark text strokes stay out of the disk
        raw = (sat > 40).astype(np.uint8)
        closed = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, labels, stats, cents = cv2.connectedComponentsWithStats(closed, connectivity=8)
        if n <= 1:
            return None
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h, area = (int(v) for v in stats[k])
        if min(w, h) < 40 or abs(w - h) > 0.12 * max(w, h):
            return None
        fill = area / float(w * h)
        if not (0.70 <= fill <= 0.86):
            return None
        sel = labels == k
        colors = self.arr[sel].reshape(-1, 3)
        clusters = _cluster_colors(colors)
        if len(clusters) < 2:
            return None
        cx, cy = float(cents[k][0]), float(cents[k][1])
        ys, xs = np.nonzero(sel)
        ang = np.degrees(np.arctan2(-(ys - cy), xs - cx))  # CCW from +x, y up
        pix = self.arr[ys, xs].astype(np.float32)
        centers = np.array([c for c, _ in clusters], dtype=np.float32)
        assign = np.argmin(((pix[:, None, :] - centers[None, :, :]) ** 2).sum(-1), axis=1)
        total = float(len(assign))
        wedges: list[dict[str, float]] = []
        for i, (_c, _) in enumerate(clusters):
            m = assign == i
            share = float(m.sum()) / total
            if share < 0.01:
                continue
            a = np.radians(ang[m])
            mid = math.degrees(math.atan2(float(np.sin(a).mean()), float(np.cos(a).mean())))
            wedges.append({"share": share, "mid": mid})
        r = (w + h) / 4.0
        cand = []
        for ln in self.lines:
            lx, ly = ln.box.center
            d = math.hypot(lx - cx, ly - cy)
            nx = min(max(cx, ln.box.x0), ln.box.x1)
            ny = min(max(cy, ln.box.y0), ln.box.y1)
            near = math.hypot(nx - cx, ny - cy)
            if d < 0.6 * r or near > 1.3 * r or _num(ln.text) is not None:
                continue
            cand.append((ln, math.degrees(math.atan2(-(ly - cy), lx - cx)), near / r))
        # greedy global matching on angle difference + distance from the rim (labels sit
        # just outside it; a title above the disk is further out)
        costs = []
        for wi, wd in enumerate(wedges):
            for j, (_ln, a, rel) in enumerate(cand):
                diff = abs((a - wd["mid"] + 180) % 360 - 180)
                if diff < 45:
                    costs.append((diff + 60.0 * abs(rel - 1.0), wi, j))
        names = [""] * len(wedges)
        used: set[int] = set()
        done: set[int] = set()
        for _cost, wi, j in sorted(costs):
            if wi in done or j in used:
                continue
            names[wi] = cand[j][0].text
            done.add(wi)
            used.add(j)
        order = sorted(range(len(wedges)), key=lambda i: -wedges[i]["share"])
        points = [[names[i], round(100.0 * wedges[i]["share"], 2)] for i in order]
        taken = {id(cand[j][0]) for j in used}
        above = [ln for ln in self.lines if ln.box.y1 <= y + 2 and id(ln) not in taken
                 and _num(ln.text) is None]
        title = " ".join(ln.text for ln in sorted(above, key=lambda q: q.box.y0)).strip()
        return {"type": "pie", "title": title, "x_label": "", "y_label": "",
                "series": [{"name": "", "points": points}],
                "plot_box": [x, y, x + w, y + h]}

    def read(self) -> dict[str, Any]:
        pie = self._pie()
        box = _plot_box(self.gray)
        if pie is not None and box is None:
            return pie
        if box is None:
            return self._other(None)
        left, top, right, bottom = box
        sat = _saturation(self.arr)
        inner = np.zeros_like(sat, dtype=bool)
        inner[top + 2:bottom - 1, left + 2:right - 1] = True
        colored = (sat > 40) & inner
        comps = _components(colored, self.arr)
        rects = [c for c in comps if c.fill >= 0.85 and c.w >= 3 and c.h >= 3]
        legend = self._legend(comps, box)
        legend_ids = {id(c) for c, _ in legend}
        bars = [c for c in rects if id(c) not in legend_ids]
        orient = self._bar_orientation(bars, box)
        if orient is not None:
            return self._bars(bars, box, orient, legend)
        strokes = [c for c in comps if c.fill < 0.5 and (c.w > 0.3 * (right - left)
                                                         or c.h > 0.3 * (bottom - top))]
        if strokes:
            return self._line(colored, box, legend)
        if pie is not None:
            return pie
        return self._other(box)

    def _other(self, box: tuple[int, int, int, int] | None) -> dict[str, Any]:
        top = box[1] if box else int(self.H * 0.15)
        return {"type": "other", "title": self._title(top), "x_label": "", "y_label": "",
                "series": []}

    # --- text roles ---------------------------------------------------------------------

    def _title(self, top: int) -> str:
        above = [ln for ln in self.lines if ln.box.y1 <= top + 2 and _num(ln.text) is None]
        if not above:
            return ""
        # the row nearest the plot top that is not a tick label
        above.sort(key=lambda ln: ln.box.y0)
        return " ".join(ln.text for ln in above).strip()

    @staticmethod
    def _sideways(ln: OcrLine) -> bool:
        return (ln.box.y1 - ln.box.y0) > 1.5 * (ln.box.x1 - ln.box.x0) and len(ln.text) > 2

    def _y_ticks(self, box: tuple[int, int, int, int]) -> list[OcrLine]:
        left, top, right, bottom = box
        cands = [ln for ln in self.lines if ln.box.x1 <= left + 3 and not self._sideways(ln)
                 and top - self.lh <= ln.box.center[1] <= bottom + self.lh
                 and ln.box.x1 >= left - 12 * self.lh]
        if not cands:
            return []
        # the tick column is right-aligned against the axis
        edge = max(ln.box.x1 for ln in cands)
        return [ln for ln in cands if ln.box.x1 >= edge - 1.2 * self.lh]

    def _x_ticks(self, box: tuple[int, int, int, int]) -> list[OcrLine]:
        left, top, right, bottom = box
        cands = [ln for ln in self.lines if ln.box.y0 >= bottom - 3
                 and ln.box.y0 <= bottom + 1.8 * self.lh
                 and left - 3 * self.lh <= ln.box.center[0] <= right + 3 * self.lh]
        if not cands:
            return []
        first = min(ln.box.y0 for ln in cands)
        return [ln for ln in cands if ln.box.y0 <= first + 0.5 * self.lh]

    def _labels(self, box: tuple[int, int, int, int]) -> tuple[str, str]:
        left, top, right, bottom = box
        xt = self._x_ticks(box)
        xt_top = min((ln.box.y0 for ln in xt), default=float(bottom))
        xl = [ln for ln in self.lines if ln.box.y0 > xt_top + 0.5 * self.lh and ln not in xt
              and left - 2 * self.lh <= ln.box.center[0] <= right + 2 * self.lh]
        x_label = " ".join(ln.text for ln in sorted(xl, key=lambda q: q.box.x0))
        yt = self._y_ticks(box)
        yt_left = min((ln.box.x0 for ln in yt), default=float(left))
        yl = [ln for ln in self.lines if ln not in yt and top <= ln.box.center[1] <= bottom
              and (ln.box.x1 <= yt_left + 2 or (self._sideways(ln) and ln.box.x1 < left))]
        y_label = " ".join(ln.text for ln in sorted(yl, key=lambda q: q.box.y0))
        if not y_label and self.ocr is not None and yt_left > 12:
            strip = self.image.crop((0, top, int(yt_left) - 1, bottom)).rotate(-90, expand=True)
            try:
                found = self.ocr.read(strip)
                y_label = " ".join(f.text for f in found)
            except Exception:  # the y label is a nicety
                log.debug("y-label re-read failed", exc_info=True)
        return x_label, y_label

    def _legend(self, rects: list[_Comp], box: tuple[int, int, int, int]
                ) -> list[tuple[_Comp, str]]:
        out: list[tuple[_Comp, str]] = []
        for c in rects:
            if c.w > 4 * self.lh or c.h > 1.5 * self.lh or c.fill < 0.6:
                continue
            for ln in self.lines:
                cy = (c.y0 + c.y1) / 2
                if (0 <= ln.box.x0 - c.x1 <= 1.5 * self.lh and ln.box.y0 - 3 <= cy <= ln.box.y1 + 3
                        and _num(ln.text) is None):
                    out.append((c, ln.text))
                    break
        return out

    # --- bars -----------------------------------------------------------------------------

    def _bar_orientation(self, bars: list[_Comp], box: tuple[int, int, int, int]) -> str | None:
        if len(bars) < 2:
            return None
        left, top, right, bottom = box
        tol = 3
        bottoms = np.array([c.y1 for c in bars])
        lefts = np.array([c.x0 for c in bars])
        tops = np.array([c.y0 for c in bars])
        rights = np.array([c.x1 for c in bars])
        v_share = max(np.sum(np.abs(bottoms - np.median(bottoms)) <= tol),
                      np.sum(np.abs(tops - np.median(tops)) <= tol)) / len(bars)
        h_share = max(np.sum(np.abs(lefts - np.median(lefts)) <= tol),
                      np.sum(np.abs(rights - np.median(rights)) <= tol)) / len(bars)
        widths = np.array([c.w for c in bars])
        heights = np.array([c.h for c in bars])
        v_ok = v_share >= 0.6 and np.ptp(widths) <= 3
        h_ok = h_share >= 0.6 and np.ptp(heights) <= 3
        if v_ok and h_ok:
            ynum = sum(1 for ln in self._y_ticks(box) if _num(ln.text) is not None)
            xnum = sum(1 for ln in self._x_ticks(box) if _num(ln.text) is not None)
            return "vertical" if ynum >= xnum else "horizontal"
        if v_ok:
            return "vertical"
        if h_ok:
            return "horizontal"
        return None

    def _calibration(self, box: tuple[int, int, int, int], axis: str
                     ) -> tuple[tuple[float, float] | None, list[tuple[float, float]]]:
        left, top, right, bottom = box
        if axis == "y":
            marks = _tick_marks(self.gray, "y", left, top - 2, bottom + 3)
            pairs = [p for ln in self._y_ticks(box) for p in _split_numeric(ln, False)]
        else:
            marks = _tick_marks(self.gray, "x", bottom, left - 2, right + 3)
            pairs = [p for ln in self._x_ticks(box) for p in _split_numeric(ln, True)]
        pairs = [(_snap(p, marks, 0.6 * self.lh), v) for p, v in pairs]
        return _fit(pairs), pairs

    def _bars(self, bars: list[_Comp], box: tuple[int, int, int, int], orient: str,
              legend: list[tuple[_Comp, str]]) -> dict[str, Any]:
        left, top, right, bottom = box
        vertical = orient == "vertical"
        cal, ticks = self._calibration(box, "y" if vertical else "x")
        if cal is None:
            self.warnings.append("no numeric axis ticks could be read: bar values unknown")
        a, b = cal if cal else (0.0, 0.0)
        bg = self._background(box)
        # baseline: the shared edge
        if vertical:
            ends = np.array([c.y1 for c in bars])
            starts = np.array([c.y0 for c in bars])
        else:
            ends = np.array([c.x0 for c in bars])
            starts = np.array([c.x1 for c in bars])
        base_at_end = np.sum(np.abs(ends - np.median(ends)) <= 3) >= np.sum(
            np.abs(starts - np.median(starts)) <= 3)
        cat_lines = [ln for ln in (self._x_ticks(box) if vertical else self._y_ticks(box))
                     if _num(ln.text) is None]
        series: dict[int, dict[str, Any]] = {}
        colors: list[tuple[float, float, float]] = []
        for c in sorted(bars, key=lambda q: (q.x0 if vertical else q.y0)):
            if vertical:
                mid = (c.x0 + c.x1) // 2
                lo, hi = max(0, c.y0 - 3), min(self.H, c.y1 + 4)
                strip = self.arr[lo:hi, max(c.x0 + 1, mid - 1):min(c.x1, mid + 2)].mean(axis=1)
            else:
                mid = (c.y0 + c.y1) // 2
                lo, hi = max(0, c.x0 - 3), min(self.W, c.x1 + 4)
                strip = self.arr[max(c.y0 + 1, mid - 1):min(c.y1, mid + 2), lo:hi].mean(axis=0)
            cov = _coverage(strip, c.color, (bg[0], bg[1], bg[2]), strip)
            e = _edges(cov)
            if e is None:
                continue
            s0, s1 = lo + e[0], lo + e[1]
            # the value edge is the one away from the shared baseline
            far = (s0 if base_at_end else s1) if vertical else (s1 if base_at_end else s0)
            value = a * far + b if cal else None
            centre = (c.x0 + c.x1 + 1) / 2 if vertical else (c.y0 + c.y1 + 1) / 2
            label = self._category(cat_lines, centre, vertical, (c.w if vertical else c.h))
            ci = next((i for i, k in enumerate(colors) if _color_dist(k, c.color) < 40), None)
            if ci is None:
                colors.append(c.color)
                ci = len(colors) - 1
                name = next((t for lc, t in legend if _color_dist(lc.color, c.color) < 40), "")
                series[ci] = {"name": name, "points": [], "color": _hex(c.color)}
            series[ci]["points"].append(
                [label, None if value is None else round(value, 4)])
        _split_shared_labels(series)
        x_label, y_label = self._labels(box)
        return {"type": "bar", "orientation": orient, "title": self._title(top),
                "x_label": x_label, "y_label": y_label,
                "series": [series[i] for i in sorted(series)],
                "axis": {"ticks": [[round(p, 1), v] for p, v in ticks],
                         "fit": [a, b] if cal else None},
                "plot_box": [left, top, right, bottom]}

    def _background(self, box: tuple[int, int, int, int]) -> tuple[float, float, float]:
        """Plot background: median of the low-saturation pixels (bars may cover most)."""
        left, top, right, bottom = box
        px = self.arr[top + 3:bottom - 2, left + 3:right - 2].reshape(-1, 3).astype(np.int16)
        sat = px.max(axis=1) - px.min(axis=1)
        light = px[(sat < 25) & (px.mean(axis=1) > 128)]
        if len(light) < 50:
            return (255.0, 255.0, 255.0)
        med = np.median(light, axis=0)
        return (float(med[0]), float(med[1]), float(med[2]))

    def _category(self, cands: list[OcrLine], centre: float, vertical: bool,
                  width: float) -> str:
        best, bd = "", 1e9
        for ln in cands:
            c = ln.box.center[0] if vertical else ln.box.center[1]
            d = abs(c - centre)
            if d < bd and d <= max(width, 2 * self.lh):
                best, bd = ln.text, d
        return best

    # --- lines ----------------------------------------------------------------------------

    def _line(self, colored: np.ndarray, box: tuple[int, int, int, int],
              legend: list[tuple[_Comp, str]]) -> dict[str, Any]:
        left, top, right, bottom = box
        ycal, _ = self._calibration(box, "y")
        xt = self._x_ticks(box)
        marks = _tick_marks(self.gray, "x", bottom, left - 2, right + 3)
        xpos: list[tuple[float, Any]] = []
        for ln in xt:
            nums = _split_numeric(ln, True)
            if nums:
                xpos += [(_snap(p, marks, 0.6 * self.lh), v) for p, v in nums]
            else:
                xpos.append((_snap(ln.box.center[0], marks, 0.6 * self.lh), ln.text))
        xpos.sort(key=lambda q: q[0])
        mask = colored.copy()
        for c, _ in legend:
            mask[c.y0 - 1:c.y1 + 2, c.x0 - 1:c.x1 + 2] = False
        ys, xs = np.nonzero(mask)
        hues = _hues(self.arr[ys, xs].reshape(-1, 3)) if len(ys) else np.zeros(0)
        series = []
        for hue in _hue_peaks(hues):
            m = np.abs((hues - hue + 90) % 180 - 90) <= 8
            if not m.any():
                continue
            px = self.arr[ys[m], xs[m]].astype(np.float32)
            sat = px.max(axis=1) - px.min(axis=1)
            core = px[sat >= np.percentile(sat, 75)]
            col = (float(core[:, 0].mean()), float(core[:, 1].mean()), float(core[:, 2].mean()))
            cm = np.zeros_like(mask)
            cm[ys[m], xs[m]] = True
            pts = []
            for xp, xv in xpos:
                xi = int(xp)
                if not (left < xi < right):
                    continue
                rows = np.nonzero(cm[:, max(left, xi - 1):xi + 2].any(axis=1))[0]
                if len(rows) == 0:
                    continue
                yc = float(rows.mean()) + 0.5
                yv = ycal[0] * yc + ycal[1] if ycal else None
                pts.append([xv, None if yv is None else round(yv, 4)])
            name = next((t for lc, t in legend if _color_dist(lc.color, col) < 40), "")
            series.append({"name": name, "points": pts, "color": _hex(col)})
        if ycal is None:
            self.warnings.append("no numeric y ticks could be read: line values unknown")
        x_label, y_label = self._labels(box)
        return {"type": "line", "title": self._title(top), "x_label": x_label,
                "y_label": y_label, "series": series, "plot_box": [left, top, right, bottom]}


def _split_shared_labels(series: dict[int, dict[str, Any]]) -> None:
    """OCR sometimes merges neighbouring category labels ("Foxtrot November"): when k
    consecutive bars got the same k-word label, give each bar its word."""
    for s in series.values():
        pts = s["points"]
        i = 0
        while i < len(pts):
            j = i
            while j + 1 < len(pts) and pts[j + 1][0] == pts[i][0]:
                j += 1
            words = str(pts[i][0]).split()
            k = j - i + 1
            if k > 1 and len(words) == k:
                for n in range(k):
                    pts[i + n][0] = words[n]
            i = j + 1


def _hues(pixels: np.ndarray) -> np.ndarray:
    """OpenCV hue (0..179) of RGB pixels; blending with a white or grey background keeps it."""
    import cv2

    hsv = cv2.cvtColor(pixels.astype(np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV)
    return hsv[:, 0, 0].astype(np.float32)


def _hue_peaks(hues: np.ndarray, tol: int = 8, min_share: float = 0.05) -> list[float]:
    if len(hues) == 0:
        return []
    hist = np.bincount(hues.astype(np.int64), minlength=180).astype(np.float64)
    peaks: list[float] = []
    work = hist.copy()
    while work.max() > 0:
        h = int(work.argmax())
        idx = [(h + d) % 180 for d in range(-tol, tol + 1)]
        if hist[idx].sum() / len(hues) >= min_share:
            peaks.append(float(h))
        work[idx] = 0
        if len(peaks) >= 8:
            break
    return peaks


def _hex(c: tuple[float, ...]) -> str:
    return "#" + "".join(f"{int(round(v)):02x}" for v in c[:3])


def _cluster_colors(colors: np.ndarray, dist: float = 40.0, min_share: float = 0.01
                    ) -> list[tuple[tuple[float, float, float], int]]:
    """Greedy clustering of RGB pixels by quantised colour frequency."""
    if len(colors) == 0:
        return []
    q = (colors // 8).astype(np.int32)
    keys, counts = np.unique(q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2], return_counts=True)
    order = np.argsort(-counts)
    centers: list[list[float]] = []
    tallies: list[int] = []
    for i in order:
        k = int(keys[i])
        c = [(k // 1024) * 8 + 4.0, ((k // 32) % 32) * 8 + 4.0, (k % 32) * 8 + 4.0]
        j = next((j for j, cc in enumerate(centers) if _color_dist(tuple(cc), tuple(c)) < dist),
                 None)
        if j is None:
            centers.append(c)
            tallies.append(int(counts[i]))
        else:
            tallies[j] += int(counts[i])
    total = float(len(colors))
    return [((c[0], c[1], c[2]), t) for c, t in zip(centers, tallies, strict=False)
            if t / total >= min_share]


def read_chart(image: Image.Image, lines: list[OcrLine], *, ocr: _Reader | None = None
               ) -> dict[str, Any]:
    """`{"type", "title", "x_label", "y_label", "series": [{"name", "points"}], ...}`."""
    reader = ChartReader(image, lines, ocr)
    try:
        out = reader.read()
    except Exception as exc:  # pixels can be anything: degrade to "other", never crash
        log.warning("chart reading failed: %s", exc, exc_info=True)
        out = {"type": "other", "title": "", "x_label": "", "y_label": "", "series": []}
        reader.warnings.append(f"chart reading failed: {exc}")
    out["warnings"] = reader.warnings
    return out


def classify_chart(image: Image.Image, lines: list[OcrLine] | None = None) -> str:
    """bar | line | pie | other, from pixels (text only helps bar orientation)."""
    return str(read_chart(image, lines or [])["type"])


def box_of(points: list[float]) -> Box:
    return Box(*points[:4])
