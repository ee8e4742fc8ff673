"""`dateparser` and `price-parser` beside the key-value extractor's own date and amount
parsers (indexer/documents/kv.py), on labelled value strings as they come off invoices and
receipts: accuracy on what is a date / an amount, false readings of what is not (a value
that is not a date must not become one: the extractor types a value by trying a date first),
and time per call. Adopted only if at least as good."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# (text, ISO date or None); day-first where ambiguous, as the extractor's default
DATES: list[tuple[str, str | None]] = [
    ("2024-03-05", "2024-03-05"), ("2024/3/5", "2024-03-05"), ("05.03.2024", "2024-03-05"),
    ("5/3/2024", "2024-03-05"), ("13/02/2023", "2023-02-13"), ("02/13/2023", "2023-02-13"),
    ("31-12-99", "1999-12-31"), ("1 March 2024", "2024-03-01"), ("1st March 2024", "2024-03-01"),
    ("March 1, 2024", "2024-03-01"), ("Mar 1 2024", "2024-03-01"), ("12 Sept 2022", "2022-09-12"),
    ("3 févr. 2021", "2021-02-03"), ("7 juil 2020", "2020-07-07"), ("14. Mär 2019", "2019-03-14"),
    ("Dec. 25, 2023", "2023-12-25"), ("25 December 2023.", "2023-12-25"),
    ("Tuesday, 5 March 2024", "2024-03-05"), ("5-Mar-2024", "2024-03-05"),
    ("05 MAR 2024", "2024-03-05"), ("3 mars 2021", "2021-03-03"),
    ("5. Dezember 2022", "2022-12-05"),
    # not dates
    ("12", None), ("1,234.50", None), ("€ 12.00", None), ("INV-2024-0042", None),
    ("Total", None), ("31/02/2024", None), ("2024", None), ("10:30", None),
    ("Net 30 days", None), ("3 items", None), ("May", None), ("Order 12 of 2024", None),
    ("+44 20 7946 0958", None), ("VAT 20%", None), ("12.5", None),
]
# (text, (amount, ISO currency or None) or None)
AMOUNTS: list[tuple[str, tuple[float, str | None] | None]] = [
    ("€ 1,234.50", (1234.5, "EUR")), ("1.234,50 €", (1234.5, "EUR")), ("$12", (12.0, "USD")),
    ("12 USD", (12.0, "USD")), ("£0.99", (0.99, "GBP")), ("CHF 1'250.00", (1250.0, "CHF")),
    ("1 234,56 EUR", (1234.56, "EUR")), ("¥1200", (1200.0, "JPY")), ("(12.00)", (-12.0, None)),
    ("-5.00 €", (-5.0, "EUR")), ("99.90", (99.9, None)), ("1,000,000", (1000000.0, None)),
    ("USD 45.10", (45.1, "USD")), ("₹ 2,500", (2500.0, "INR")),
    # not amounts
    ("INV-2024-0042", None), ("Total", None), ("2024-03-05", None), ("Net 30 days", None),
    ("+44 20 7946 0958", None), ("3 items", None), ("ABC", None), ("1.2.3", None),
]


def _own_date(s: str) -> str | None:
    from indexer.documents.kv import _parse_date_own

    r = _parse_date_own(s, dayfirst=True)
    return r[0] if r else None


def _hybrid_date(s: str) -> str | None:
    """What kv.parse_date does now: the own parser, dateparser for what it misses."""
    from indexer.documents.kv import parse_date

    r = parse_date(s, dayfirst=True)
    return r[0] if r else None


def _dateparser(s: str) -> str | None:
    import dateparser

    d = dateparser.parse(s, settings={"DATE_ORDER": "DMY", "PREFER_DAY_OF_MONTH": "first",
                                      "REQUIRE_PARTS": ["day", "month", "year"],
                                      "STRICT_PARSING": True},
                         languages=["en", "fr", "de"])
    return d.date().isoformat() if d else None


def _own_amount(s: str) -> tuple[float, str | None] | None:
    from indexer.documents.kv import parse_amount

    return parse_amount(s)


_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR"}


def _price_parser(s: str) -> tuple[float, str | None] | None:
    from price_parser import Price

    p = Price.fromstring(s)
    if p.amount is None:
        return None
    cur = p.currency
    cur = _SYMBOLS.get(cur, cur.upper()) if cur else None  # it reports the symbol as written
    return float(p.amount), cur


def _score(fn: Callable[[str], Any], cases: list[tuple[str, Any]]) -> dict[str, Any]:
    pos = [(s, want) for s, want in cases if want is not None]
    neg = [s for s, want in cases if want is None]
    t0 = time.perf_counter()
    got = [fn(s) for s, _ in cases]
    dt = (time.perf_counter() - t0) / len(cases)
    by = dict(zip([s for s, _ in cases], got, strict=True))
    right = sum(by[s] == want for s, want in pos)
    false = [s for s in neg if by[s] is not None]
    wrong = [f"{s!r} -> {by[s]!r}" for s, want in pos if by[s] != want]
    return {"correct": f"{right}/{len(pos)}", "false_readings": f"{len(false)}/{len(neg)}",
            "accuracy": round((right + len(neg) - len(false)) / len(cases), 3),
            "us_per_call": round(dt * 1e6, 1), "misread": wrong[:6], "false": false[:6]}


def bench_kv_libraries() -> dict[str, Any]:
    out: dict[str, Any] = {"cases": {"dates": len(DATES), "amounts": len(AMOUNTS)}}
    for kind, cases, own, lib, name in (
            ("dates", DATES, _own_date, _dateparser, "dateparser"),
            ("amounts", AMOUNTS, _own_amount, _price_parser, "price_parser")):
        own(cases[0][0])  # imports outside the clock
        res: dict[str, Any] = {"own": _score(own, cases)}
        try:
            lib(cases[0][0])  # import + warm its caches outside the clock
            res[name] = _score(lib, cases)
        except ImportError as e:
            res[name] = {"skipped": f"not installed ({e})"}
            out[kind] = res
            continue
        # at least as good: as accurate, and not an order of magnitude slower (a page's
        # values are typed many times while the extractor splits lines)
        res["adopted"] = (res[name]["accuracy"] >= res["own"]["accuracy"]
                          and res[name]["us_per_call"] <= 10 * res["own"]["us_per_call"])
        if kind == "dates":
            import re

            from indexer.documents.kv import _DATEPARSER_WORTH, _parse_date_own

            res["own_then_dateparser"] = h = _score(_hybrid_date, cases)
            falls = [c for c, _ in cases if _parse_date_own(c) is None
                     and _DATEPARSER_WORTH.search(c) and re.search(r"\b\d{4}\b", c)]
            h["falls_back_on"] = f"{len(falls)}/{len(cases)} (a word and a 4-digit year that " \
                                 "the own parser does not read); every other value costs " \
                                 "what the own parser costs"
            # as accurate as the better of the two, and the own parser's cost wherever the
            # own parser reads the value (the common case: numbers, amounts, n/n/yyyy)
            if h["accuracy"] >= max(res["own"]["accuracy"], res[name]["accuracy"]):
                res["adopted"] = "own_then_dateparser"
        out[kind] = res
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(bench_kv_libraries(), indent=1, ensure_ascii=False))
