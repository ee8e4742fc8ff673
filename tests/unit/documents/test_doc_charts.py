"""matplotlib charts from seeded random data with known values, read back from pixels."""

from __future__ import annotations

import pytest

from indexer.documents.charts import classify_chart, read_chart
from indexer.documents.synth import bar_chart, line_chart, pie_chart


def _within(got: float | None, want: float, rel: float) -> bool:
    return got is not None and abs(got - want) <= rel * abs(want)


@pytest.fixture(scope="module")
def charts(ocr):  # type: ignore[no-untyped-def]
    out = {}
    for name, s in (("vbar", bar_chart(31)), ("hbar", bar_chart(32, horizontal=True)),
                    ("vbar2", bar_chart(33, n=7)), ("line", line_chart(34)),
                    ("pie", pie_chart(35))):
        out[name] = (s, read_chart(s.image, ocr.read(s.image), ocr=ocr))
    return out


@pytest.mark.parametrize("name", ["vbar", "vbar2", "hbar"])
def test_bar_values_labels_and_titles(charts, name: str) -> None:  # type: ignore[no-untyped-def]
    s, out = charts[name]
    horizontal = s.truth["horizontal"]
    assert out["type"] == "bar"
    assert out["orientation"] == ("horizontal" if horizontal else "vertical")
    assert out["title"] == s.truth["title"]
    assert out["x_label"] == ("Amount" if horizontal else "Item")
    assert len(out["series"]) == 1
    pts = out["series"][0]["points"]
    cats, vals = list(s.truth["categories"]), list(s.truth["values"])
    if horizontal:  # barh puts the first category at the bottom; we read top to bottom
        cats, vals = cats[::-1], vals[::-1]
    assert len(pts) == len(vals)
    ok = sum(_within(p[1], v, 0.05) for p, v in zip(pts, vals, strict=True))
    assert ok / len(vals) >= 0.9, (pts, vals)
    assert sum(p[0] == c for p, c in zip(pts, cats, strict=True)) >= len(cats) - 1


def test_line_values_at_x_ticks(charts) -> None:  # type: ignore[no-untyped-def]
    s, out = charts["line"]
    assert out["type"] == "line"
    assert (out["title"], out["x_label"], out["y_label"]) == ("Line trend", "Week", "Visits")
    assert len(out["series"]) == 1
    pts = {p[0]: p[1] for p in out["series"][0]["points"]}
    truth = dict(zip(s.truth["x"], s.truth["y"], strict=True))
    assert len(pts) >= len(truth) - 1
    span = max(truth.values()) - min(truth.values())
    for x, y in pts.items():
        assert x in truth
        assert abs(y - truth[x]) <= 0.03 * span, (x, y, truth[x])


def test_pie_shares_and_labels(charts) -> None:  # type: ignore[no-untyped-def]
    s, out = charts["pie"]
    assert out["type"] == "pie"
    assert out["title"] == "Share by kind"
    pts = out["series"][0]["points"]
    assert len(pts) == len(s.truth["shares"])
    truth = dict(zip(s.truth["labels"], s.truth["shares"], strict=True))
    named = [(n, v) for n, v in pts if n]
    assert len(named) >= len(pts) - 1  # OCR may miss one small label
    for n, v in named:
        assert abs(v - truth[n]) <= 1.5, (n, v, truth[n])
    assert abs(sum(v for _, v in pts) - 100) <= 2


def test_classify_chart_pixels_only(charts) -> None:  # type: ignore[no-untyped-def]
    assert classify_chart(charts["vbar"][0].image) == "bar"
    assert classify_chart(charts["line"][0].image) == "line"
    assert classify_chart(charts["pie"][0].image) == "pie"


def test_non_chart_is_other_without_crash() -> None:
    from PIL import Image

    out = read_chart(Image.new("RGB", (300, 200), "white"), [])
    assert out["type"] == "other" and out["series"] == []
