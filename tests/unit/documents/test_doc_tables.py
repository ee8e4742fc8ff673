"""Tables rendered with PIL, with and without ruling lines, read back cell by cell."""

from __future__ import annotations

import csv
import io

import pytest

from indexer.documents.synth import random_table, table_image
from indexer.documents.tables import detect_tables, table_to_csv


def _accuracy(truth: list[list[str]], got: list[list[str]]) -> float:
    total = sum(len(r) for r in truth)
    ok = sum(1 for r, row in enumerate(truth) for c, v in enumerate(row)
             if r < len(got) and c < len(got[r]) and got[r][c] == v)
    return ok / total


@pytest.mark.parametrize("ruled,seed", [(True, 3), (False, 4)])
def test_table_cells_recovered(ocr, ruled: bool, seed: int) -> None:  # type: ignore[no-untyped-def]
    rows = random_table(seed, n_rows=6, n_cols=4)
    s = table_image(rows, ruled=ruled, title="Stock levels by depot")
    tables = detect_tables(s.image, ocr.read(s.image), ocr=ocr)
    assert len(tables) == 1
    t = tables[0]
    assert t.ruled is ruled
    assert (t.n_rows, t.n_cols) == (6, 4)
    assert _accuracy(rows, t.rows) >= 0.95, t.rows
    # the box is where the table was drawn (title above is not part of it)
    x0, y0, x1, y1 = s.truth["box"]
    if ruled:  # the grid itself
        assert max(abs(t.box.x0 - x0), abs(t.box.y0 - y0), abs(t.box.x1 - x1),
                   abs(t.box.y1 - y1)) <= 4
    else:  # the hull of the text inside the drawn area
        assert x0 - 10 <= t.box.x0 and t.box.x1 <= x1 + 10 and y0 - 10 <= t.box.y0
        assert t.box.y1 <= y1 + 10 and (t.box.x1 - t.box.x0) >= 0.8 * (x1 - x0)
    assert all("Stock" not in c for r in t.rows for c in r)


def test_csv_export_round_trips() -> None:
    from indexer.documents.tables import Table
    from indexer.domain import Box

    rows = [["Name", "Note"], ["a,b", 'say "hi"'], ["x", ""]]
    text = table_to_csv(Table(rows=rows, box=Box(0, 0, 1, 1), ruled=True))
    assert list(csv.reader(io.StringIO(text))) == rows
    assert table_to_csv({"rows": rows}) == text


def test_plain_paragraph_is_not_a_table(ocr) -> None:  # type: ignore[no-untyped-def]
    from indexer.documents.synth import paragraph, text_page

    s = text_page([[paragraph(21, 5, 6)]])
    assert detect_tables(s.image, ocr.read(s.image)) == []
