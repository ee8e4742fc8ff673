"""extract() dispatch, classify_view and validate_extraction."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from indexer.documents.extract import classify_view, extract, validate_extraction
from indexer.documents.synth import (
    bar_chart,
    form_image,
    paragraph,
    random_table,
    table_image,
    text_page,
)
from indexer.domain import ViewInput
from indexer.errors import InvalidRequest


@pytest.fixture(scope="module")
def page():  # type: ignore[no-untyped-def]
    return text_page([[paragraph(41, 4, 5)], [paragraph(42, 4, 5)]], title="Annual Summary")


def test_unknown_kind_is_invalid_request(ocr) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest):
        extract(ViewInput("v", Image.new("RGB", (10, 10))), "poem", ocr)


@pytest.mark.parametrize("kind", ["text", "tables", "kv", "chart"])
def test_blank_image_gives_empty_result_with_warning(ocr, kind: str) -> None:  # type: ignore[no-untyped-def]
    before = ocr.calls
    out = extract(ViewInput("blank", Image.new("RGB", (400, 300), "white")), kind, ocr)
    assert out["warnings"] and "blank" in out["warnings"][0]
    assert validate_extraction(kind, out) == []
    assert ocr.calls == before  # nothing to read: no OCR spent


def test_text_from_ocr_in_reading_order(ocr, page) -> None:  # type: ignore[no-untyped-def]
    out = extract(ViewInput("p1", page.image, kind="page", page=1), "text", ocr)
    assert out["source"] == "ocr" and out["rotation"] == 0
    assert validate_extraction("text", out) == []
    words = out["text"].lower().split()
    assert words[:2] == ["annual", "summary"]
    left, right = paragraph(41, 4, 5).split(), paragraph(42, 4, 5).split()
    assert words.index(left[-1]) < words.index(right[0])


def test_text_prefers_text_layer(ocr, page) -> None:  # type: ignore[no-untyped-def]
    before = ocr.calls
    view = ViewInput("p1", page.image, kind="page", page=1, text_layer="Hello\n\nWorld page")
    out = extract(view, "text", ocr)
    assert out["source"] == "text_layer" and out["text"] == "Hello\n\nWorld page"
    assert [b["text"] for b in out["blocks"]] == ["Hello", "World page"]
    assert ocr.calls == before


def test_tables_kv_chart_dispatch(ocr) -> None:  # type: ignore[no-untyped-def]
    rows = random_table(51, n_rows=4, n_cols=3)
    t = extract(ViewInput("t", table_image(rows).image), "tables", ocr)
    assert validate_extraction("tables", t) == []
    assert t["tables"][0]["rows"] == rows and t["tables"][0]["csv"].startswith(",".join(rows[0]))
    f = extract(ViewInput("f", form_image([("Date", "2025-01-31"), ("Total", "$ 9.99")]).image),
                "kv", ocr)
    assert validate_extraction("kv", f) == []
    assert {p["key"]: p["normalized"] for p in f["pairs"]} == {"Date": "2025-01-31",
                                                                 "Total": 9.99}
    s = bar_chart(52)
    c = extract(ViewInput("c", s.image), "chart", ocr)
    assert validate_extraction("chart", c) == []
    assert c["type"] == "bar" and len(c["series"][0]["points"]) == len(s.truth["values"])


def test_classify_view(ocr, page) -> None:  # type: ignore[no-untyped-def]
    chart = bar_chart(53).image
    assert classify_view(chart, ocr.read(chart)) == "chart"
    assert classify_view(page.image, ocr.read(page.image)) == "document"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    photo = np.stack([(xx * 0.8) % 256, (yy * 1.0) % 256, 128 + 60 * np.sin(xx / 9.0)], -1)
    photo = (photo + rng.normal(0, 12, photo.shape)).clip(0, 255).astype(np.uint8)
    assert classify_view(Image.fromarray(photo), []) == "photo"


def test_validate_extraction_reports_problems() -> None:
    good = {"type": "bar", "title": "", "x_label": "", "y_label": "",
            "series": [{"name": "a", "points": [["x", 1.5], [2, None]]}]}
    assert validate_extraction("chart", good) == []
    bad = validate_extraction("chart", {"type": "donut", "title": 3, "series": [
        {"name": "a", "points": [["x", "high"]]}]})
    assert any("$.type" in e for e in bad) and any("$.title" in e for e in bad)
    assert any("$.x_label: missing" in e for e in bad) and any("points[0]" in e for e in bad)
    assert validate_extraction("tables", {"tables": [{"rows": [["a", 1]]}]}) != []
    assert validate_extraction("kv", {"pairs": [{"key": "k", "value": "v", "type": "date",
                                                 "normalized": "31/01/2025"}]}) != []
    assert validate_extraction("kv", {"pairs": [{"key": "k", "value": "v",
                                                 "currency": "euro"}]}) != []
    assert validate_extraction("text", []) == ["extraction must be a JSON object"]
    assert validate_extraction("poem", {}) == ["unknown kind 'poem'"]
