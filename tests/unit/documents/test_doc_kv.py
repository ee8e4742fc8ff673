"""Key-value extraction and normalisation."""

from __future__ import annotations

import pytest

from indexer.documents.kv import extract_kv, parse_amount, parse_date, parse_number
from indexer.documents.synth import form_image


@pytest.mark.parametrize("text,value", [
    ("1,234.50", 1234.5), ("1.234,50", 1234.5), ("1 234,50", 1234.5), ("12,5", 12.5),
    ("1,234", 1234.0), ("1.234.567", 1234567.0), ("(12.00)", -12.0), ("-3", -3.0),
    ("7", 7.0), ("1,2,3", None), ("abc", None), ("12.", None),
])
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


@pytest.mark.parametrize("text,value,cur", [
    ("€ 1,234.50", 1234.5, "EUR"), ("$12", 12.0, "USD"), ("£3.50", 3.5, "GBP"),
    ("99.00 USD", 99.0, "USD"), ("1.234,50 €", 1234.5, "EUR"), ("US$ 5", 5.0, "USD"),
    ("CHF 20", 20.0, "CHF"), ("42", 42.0, None),
])
def test_parse_amount(text: str, value: float, cur: str | None) -> None:
    assert parse_amount(text) == (value, cur)


@pytest.mark.parametrize("text,iso,amb", [
    ("03/04/2025", "2025-04-03", True), ("13/04/2025", "2025-04-13", False),
    ("04/13/2025", "2025-04-13", False), ("2025-04-03", "2025-04-03", False),
    ("3 April 2025", "2025-04-03", False), ("April 3, 2025", "2025-04-03", False),
    ("03.04.25", "2025-04-03", True), ("31/02/2025", None, False),
])
def test_parse_date(text: str, iso: str | None, amb: bool) -> None:
    got = parse_date(text)
    assert (got is None) if iso is None else got == (iso, amb)
    assert parse_date("03/04/2025", dayfirst=False) == ("2025-03-04", True)


def test_pairs_from_plain_lines() -> None:
    pairs = extract_kv(["Invoice No: 4711", "Total  € 1,234.50", "Date: 03/04/2025",
                        "Price: $ 12.00Fee: 3.50 Tax: 4.10", "Meeting at 12:30"])
    got = {p.key: (p.type, p.normalized, p.currency) for p in pairs}
    assert got == {
        "Invoice No": ("number", 4711.0, None),
        "Total": ("amount", 1234.5, "EUR"),
        "Date": ("date", "2025-04-03", None),
        "Price": ("amount", 12.0, "USD"),
        "Fee": ("amount", 3.5, None),
        "Tax": ("amount", 4.1, None),
    }


def test_form_image_key_values_via_ocr(ocr) -> None:  # type: ignore[no-untyped-def]
    pairs = [("Invoice No", "4711"), ("Customer", "Maple Harbor Ltd"),
             ("Date", "14/03/2025"), ("Due", "April 30, 2025"),
             ("Total", "EUR 1,234.50"), ("Shipping", "$ 25.00")]
    s = form_image(pairs)
    kv = {p.key: p for p in extract_kv(ocr.read(s.image))}
    assert set(kv) == {k for k, _ in pairs}
    assert kv["Invoice No"].normalized == 4711.0
    assert kv["Customer"].value == "Maple Harbor Ltd"
    assert kv["Date"].normalized == "2025-03-14"
    assert kv["Due"].normalized == "2025-04-30"
    assert (kv["Total"].normalized, kv["Total"].currency) == (1234.5, "EUR")
    assert (kv["Shipping"].normalized, kv["Shipping"].currency) == (25.0, "USD")
    assert kv["Total"].box is not None and kv["Total"].box.y0 > kv["Date"].box.y0  # type: ignore[union-attr]
