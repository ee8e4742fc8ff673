"""Document/chart extraction benchmark on generated inputs with known content.

- OCR character error rate (CER) against the text layer of matplotlib-written PDFs
  (render page -> OCR -> reading order -> Levenshtein vs the page's own text layer);
- table cell accuracy (exact cell match) on PIL-rendered tables, ruled and unruled;
- chart bar values: share of bars within 5 % (relative) of the true value, vertical and
  horizontal matplotlib bar charts;
- pages per second for render + OCR + layout.

`python -m bench.documents` prints JSON.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = np.arange(len(b) + 1, dtype=np.int32)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    for i, ch in enumerate(a, 1):
        cost = (bb != ord(ch)).astype(np.int32)
        cur = np.empty_like(prev)
        cur[0] = i
        sub = prev[:-1] + cost
        dele = prev[1:] + 1
        best = np.minimum(sub, dele)
        # insertions need a running minimum: cur[j] = min(best[j-1], cur[j-1] + 1)
        run = best - np.arange(1, len(b) + 1, dtype=np.int32)
        run = np.minimum.accumulate(np.concatenate(([i - 0], run)))[1:]
        cur[1:] = np.minimum(best, run + np.arange(1, len(b) + 1, dtype=np.int32))
        prev = cur
    return int(prev[-1])


def cer(hyp: str, ref: str) -> float:
    h, r = " ".join(hyp.split()), " ".join(ref.split())
    return levenshtein(h, r) / max(1, len(r))


def bench_cer(ocr: Any, n_pages: int = 3, seed: int = 7) -> dict[str, Any]:
    from indexer.documents.layout import layout_blocks, reading_order_text
    from indexer.documents.pdf import render_pdf
    from indexer.documents.synth import paragraph, text_pdf

    pages = [paragraph(seed + i, n_lines=14, words_per_line=6).split("\n")
             for i in range(n_pages)]
    pdf = text_pdf(pages)
    t0 = time.perf_counter()
    res = render_pdf(pdf, max_pages=n_pages, dpi=150)
    rates = []
    for page in res.pages:
        lines = ocr.read(page.image)
        text = reading_order_text(layout_blocks(lines))
        rates.append(cer(text, page.text_layer))
    dt = time.perf_counter() - t0
    return {"cer_mean": round(float(np.mean(rates)), 4),
            "cer_per_page": [round(r, 4) for r in rates],
            "pages": len(res.pages), "pages_per_s": round(len(res.pages) / dt, 3), "dpi": 150}


def bench_tables(ocr: Any, n: int = 4) -> dict[str, Any]:
    from indexer.documents.synth import random_table, table_image
    from indexer.documents.tables import detect_tables

    total = correct = 0
    found = 0
    for i in range(n):
        rows = random_table(100 + i, n_rows=5 + i % 3, n_cols=3 + i % 2)
        s = table_image(rows, ruled=i % 2 == 0)
        tables = detect_tables(s.image, ocr.read(s.image), ocr=ocr)
        total += sum(len(r) for r in rows)
        if not tables:
            continue
        found += 1
        best = max(tables, key=lambda t: t.n_rows * t.n_cols)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if r < len(best.rows) and c < len(best.rows[r]) and best.rows[r][c] == v:
                    correct += 1
    return {"cell_accuracy": round(correct / max(1, total), 4), "tables": n,
            "tables_found": found, "cells": total}


def bench_charts(ocr: Any, n: int = 6) -> dict[str, Any]:
    from indexer.documents.charts import read_chart
    from indexer.documents.synth import bar_chart

    within = bars = 0
    errors: list[float] = []
    typed = 0
    for i in range(n):
        horizontal = i % 2 == 1
        s = bar_chart(200 + i, horizontal=horizontal)
        out = read_chart(s.image, ocr.read(s.image), ocr=None)
        typed += out["type"] == "bar"
        truth = list(s.truth["values"])
        if horizontal:
            truth = truth[::-1]  # barh draws the first category at the bottom
        pts = out["series"][0]["points"] if out.get("series") else []
        for k, t in enumerate(truth):
            bars += 1
            if k < len(pts) and pts[k][1] is not None and len(pts) == len(truth):
                err = abs(float(pts[k][1]) - t) / abs(t)
                errors.append(err)
                within += err <= 0.05
    return {"bars_within_5pct": round(within / max(1, bars), 4), "bars": bars, "charts": n,
            "classified_bar": typed,
            "median_rel_error": round(float(np.median(errors)), 4) if errors else None}


def bench_documents(n_pages: int = 3, n_tables: int = 4, n_charts: int = 6) -> dict[str, Any]:
    from indexer.models.cpu.ocr import OcrEngine

    ocr = OcrEngine(threads=1)
    ocr.load()
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "ocr_vs_text_layer": bench_cer(ocr, n_pages),
        "tables": bench_tables(ocr, n_tables),
        "charts": bench_charts(ocr, n_charts),
    }
    out["elapsed_s"] = round(time.perf_counter() - t0, 2)
    from bench.kv_libs import bench_kv_libraries

    out["kv_libraries"] = bench_kv_libraries()  # dateparser / price-parser beside our own
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(bench_documents(), indent=2))
