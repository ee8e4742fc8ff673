"""Structured extraction entry point: one view (page, image, frame) -> JSON-ready dict.

`extract(view, kind, ocr)` with kind in {"text", "tables", "kv", "chart"}.
Text comes from the PDF text layer when the view carries one (`ViewInput.text_layer`) and
OCR otherwise; the result says which (`"source": "text_layer" | "ocr"`). Page boxes from the
text layer are not on ViewInput, so with a text layer the blocks are built from OCR boxes
when OCR is needed anyway (tables/kv/chart) and from the text layer's lines otherwise.

`validate_extraction(kind, data)` checks any producer's output (this module's or a
vision-language model's JSON) against the same shapes and returns a list of problems.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import numpy as np
from PIL import Image

from indexer.documents.charts import CHART_TYPES, read_chart
from indexer.documents.kv import extract_kv
from indexer.documents.layout import layout_blocks, reading_order_text, upright
from indexer.documents.tables import detect_tables, table_to_csv
from indexer.domain import OcrLine, ViewInput
from indexer.errors import InvalidRequest

log = logging.getLogger(__name__)

KINDS = ("text", "tables", "kv", "chart")


class OcrLike(Protocol):
    def read(self, image: Image.Image) -> list[OcrLine]: ...


def _blank(image: Image.Image) -> bool:
    g = np.asarray(image.convert("L").resize((min(256, image.width), min(256, image.height))))
    return float(g.std()) < 2.0


def _ocr_upright(image: Image.Image, ocr: OcrLike) -> tuple[Image.Image, list[OcrLine], int]:
    lines = ocr.read(image)
    return upright(image, lines, ocr=ocr)


def extract(view: ViewInput, kind: str, ocr: OcrLike) -> dict[str, Any]:
    """Dispatch one extraction. Unknown kind -> InvalidRequest. Never raises on pixels."""
    if kind not in KINDS:
        raise InvalidRequest(f"unknown extraction kind {kind!r}; expected one of {list(KINDS)}",
                             detail={"kind": kind, "allowed": list(KINDS)})
    t0 = time.perf_counter()
    image = view.image.convert("RGB")
    base: dict[str, Any] = {"kind": kind, "view_id": view.view_id, "page": view.page,
                            "warnings": []}
    if _blank(image):
        base["warnings"].append("blank image: nothing to extract")
        base.update(_empty(kind))
        base["source"] = "none"
        return base
    text_layer = (view.text_layer or "").strip()
    if kind == "text" and text_layer:
        paras = [p.strip() for p in text_layer.replace("\r\n", "\n").split("\n\n")]
        base.update({"source": "text_layer", "text": text_layer,
                     "blocks": [{"text": p, "box": None} for p in paras if p],
                     "rotation": 0})
        base["elapsed_s"] = round(time.perf_counter() - t0, 3)
        return base
    image, lines, angle = _ocr_upright(image, ocr)
    base["rotation"] = angle
    if angle:
        base["warnings"].append(f"page was rotated; turned {angle} degrees counter-clockwise")
    base["source"] = "ocr"
    if not lines:
        base["warnings"].append("no text found")
    if kind == "text":
        blocks = layout_blocks(lines)
        base.update({"text": reading_order_text(blocks),
                     "blocks": [b.to_dict() for b in blocks]})
    elif kind == "tables":
        tables = detect_tables(image, lines, ocr=ocr)
        base["tables"] = [dict(t.to_dict(), csv=table_to_csv(t)) for t in tables]
    elif kind == "kv":
        pairs = extract_kv(lines)
        base["pairs"] = [p.to_dict() for p in pairs]
    else:
        chart = read_chart(image, lines, ocr=ocr)
        base["warnings"] += chart.pop("warnings", [])
        base.update(chart)
    if text_layer:
        base["text_layer"] = text_layer  # evidence beside OCR
    base["elapsed_s"] = round(time.perf_counter() - t0, 3)
    return base


def _empty(kind: str) -> dict[str, Any]:
    if kind == "text":
        return {"text": "", "blocks": []}
    if kind == "tables":
        return {"tables": []}
    if kind == "kv":
        return {"pairs": []}
    return {"type": "other", "title": "", "x_label": "", "y_label": "", "series": []}


def classify_view(image: Image.Image, ocr_lines: list[OcrLine]) -> str:
    """'document' | 'chart' | 'photo' — cheap pixel statistics plus the OCR boxes we have.

    chart: a plot box of axis strokes, or a pie-like disk, and few text lines;
    document: light, low-colour page with text covering a fair share of it;
    photo: everything else.
    """
    from indexer.documents.charts import ChartReader, _plot_box

    img = image.convert("RGB")
    # most views are photos: a 160 px look at how light the view is settles those at once
    # (the fraction of near-white pixels barely moves with scale; 0.1 of margin below the
    # 0.5 the page rules need)
    thumb = img.resize((max(1, round(img.width * 160 / max(img.size))),
                        max(1, round(img.height * 160 / max(img.size)))),
                       Image.Resampling.BILINEAR)
    if float((np.asarray(thumb.convert("L")) > 225).mean()) < 0.4:
        return "photo"
    scale = min(1.0, 800.0 / max(img.size))
    small = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    arr = np.asarray(small)
    gray = np.asarray(small.convert("L"))
    light = float((gray > 225).mean())
    a = arr.astype(np.int16)
    sat = a.max(axis=2) - a.min(axis=2)
    colourful = float((sat > 40).mean())
    lines = [ln for ln in ocr_lines if ln.text.strip()]
    text_area = sum(ln.box.area for ln in lines) / float(img.width * img.height)
    n_chars = sum(len(ln.text) for ln in lines)
    if light > 0.5:
        if _plot_box(gray) is not None and n_chars < 400:
            return "chart"
        if n_chars < 400 and colourful > 0.03:
            scaled = [OcrLine(ln.text, ln.score, ln.box) for ln in lines]
            if ChartReader(img, scaled)._pie() is not None:
                return "chart"
        if text_area > 0.02 or n_chars >= 40:
            return "document"
    if light > 0.7 and colourful < 0.05 and n_chars >= 10:
        return "document"
    return "photo"


# --- validation ----------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _box_ok(v: Any) -> bool:
    return v is None or (isinstance(v, list | tuple) and len(v) == 4 and all(_is_num(x) for x in v))


def validate_extraction(kind: str, data: Any) -> list[str]:
    """Problems with `data` as an extraction of `kind` (empty list = valid).

    Shapes (extra keys are allowed everywhere):
      text:   {"text": str, "blocks": [{"text": str, "box"?: [4 numbers] | null}]}
      tables: {"tables": [{"rows": [[str, ...], ...], "box"?: [4 numbers]}]}
      kv:     {"pairs": [{"key": str, "value": str, "type"?: date|amount|number|text,
               "normalized"?: any, "currency"?: 3-letter code | null}]}
      chart:  {"type": bar|line|pie|other, "title": str, "x_label": str, "y_label": str,
               "series": [{"name": str, "points": [[x (str|number), y (number|null)], ...]}]}
    """
    errs: list[str] = []
    if kind not in KINDS:
        return [f"unknown kind {kind!r}"]
    if not isinstance(data, dict):
        return ["extraction must be a JSON object"]

    def need(key: str, typ: type | tuple[type, ...], where: dict[str, Any], path: str) -> Any:
        if key not in where:
            errs.append(f"{path}.{key}: missing")
            return None
        if not isinstance(where[key], typ):
            errs.append(f"{path}.{key}: expected {getattr(typ, '__name__', typ)}")
            return None
        return where[key]

    if kind == "text":
        need("text", str, data, "$")
        blocks = need("blocks", list, data, "$") or []
        for i, b in enumerate(blocks):
            if not isinstance(b, dict):
                errs.append(f"$.blocks[{i}]: expected object")
                continue
            need("text", str, b, f"$.blocks[{i}]")
            if not _box_ok(b.get("box")):
                errs.append(f"$.blocks[{i}].box: expected 4 numbers")
    elif kind == "tables":
        for i, t in enumerate(need("tables", list, data, "$") or []):
            p = f"$.tables[{i}]"
            if not isinstance(t, dict):
                errs.append(f"{p}: expected object")
                continue
            rows = need("rows", list, t, p) or []
            for r, row in enumerate(rows):
                if not isinstance(row, list) or not all(isinstance(c, str) for c in row):
                    errs.append(f"{p}.rows[{r}]: expected a list of strings")
            if not _box_ok(t.get("box")):
                errs.append(f"{p}.box: expected 4 numbers")
    elif kind == "kv":
        for i, kv in enumerate(need("pairs", list, data, "$") or []):
            p = f"$.pairs[{i}]"
            if not isinstance(kv, dict):
                errs.append(f"{p}: expected object")
                continue
            need("key", str, kv, p)
            need("value", str, kv, p)
            t = kv.get("type")
            if t is not None and t not in {"date", "amount", "number", "text"}:
                errs.append(f"{p}.type: not one of date|amount|number|text")
            cur = kv.get("currency")
            if cur is not None and not (isinstance(cur, str) and len(cur) == 3 and cur.isupper()):
                errs.append(f"{p}.currency: expected an ISO 4217 code")
            if t in {"amount", "number"} and kv.get("normalized") is not None and not _is_num(
                    kv.get("normalized")):
                errs.append(f"{p}.normalized: expected a number")
            if t == "date" and kv.get("normalized") is not None:
                import datetime as dt

                try:
                    dt.date.fromisoformat(str(kv["normalized"]))
                except ValueError:
                    errs.append(f"{p}.normalized: expected an ISO 8601 date")
    else:
        ctype = need("type", str, data, "$")
        if ctype is not None and ctype not in CHART_TYPES:
            errs.append(f"$.type: not one of {'|'.join(CHART_TYPES)}")
        for key in ("title", "x_label", "y_label"):
            need(key, str, data, "$")
        for i, s in enumerate(need("series", list, data, "$") or []):
            p = f"$.series[{i}]"
            if not isinstance(s, dict):
                errs.append(f"{p}: expected object")
                continue
            need("name", str, s, p)
            for j, pt in enumerate(need("points", list, s, p) or []):
                if (not isinstance(pt, list | tuple) or len(pt) != 2
                        or not (isinstance(pt[0], str) or _is_num(pt[0]))
                        or not (pt[1] is None or _is_num(pt[1]))):
                    errs.append(f"{p}.points[{j}]: expected [x, y] with numeric or null y")
    return errs
