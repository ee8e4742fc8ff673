"""Dates the own parser misses go to dateparser (strict); values that are not dates stay so."""

from __future__ import annotations

import pytest

from indexer.documents.kv import parse_date, type_value


@pytest.mark.parametrize(("text", "iso"), [
    ("Tuesday, 5 March 2024", "2024-03-05"), ("5-Mar-2024", "2024-03-05"),
    ("05.03.2024", "2024-03-05"), ("March 1, 2024", "2024-03-01"),
])
def test_dates(text: str, iso: str) -> None:
    got = parse_date(text)
    assert got is not None and got[0] == iso


@pytest.mark.parametrize("text", ["INV-2024-0042", "Order 12 of 2024", "Total 2024",
                                  "31/02/2024", "12.5"])
def test_not_dates(text: str) -> None:
    assert parse_date(text) is None


def test_typed_value_of_a_weekday_date() -> None:
    assert type_value("Tuesday, 5 March 2024")["normalized"] == "2024-03-05"
