"""Key-value pairs from text lines, with typed values.

Sources of pairs, in order:
- "Key: value" inside one line (several per line are split: "Price: $ 12.00 Fee: 3.50");
- "Key<2+ spaces or tab>value" inside one line;
- a key box followed on the same row by a value box (OCR often splits them): the key box
  ends with ':' or the right box parses as a date or an amount.
Values are typed: date -> ISO 8601 (day-first for ambiguous n/n/yyyy unless told otherwise;
`ambiguous` is reported), amount -> float + ISO 4217 currency when a symbol or code is
present, plain number -> float, otherwise text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from indexer.documents.layout import group_rows
from indexer.domain import Box, OcrLine

CURRENCY_SYMBOLS = {
    "€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₹": "INR", "₽": "RUB", "₩": "KRW",
    "₺": "TRY", "₪": "ILS", "₫": "VND", "₴": "UAH", "₦": "NGN", "฿": "THB", "zł": "PLN",
    "US$": "USD", "C$": "CAD", "A$": "AUD", "CA$": "CAD", "AU$": "AUD", "NZ$": "NZD",
    "HK$": "HKD", "R$": "BRL", "Fr.": "CHF", "CHF": "CHF", "kr": "SEK",
}
CURRENCY_CODES = {
    "EUR", "USD", "GBP", "JPY", "CHF", "CAD", "AUD", "NZD", "CNY", "INR", "SEK", "NOK", "DKK",
    "PLN", "CZK", "HUF", "RUB", "BRL", "MXN", "ZAR", "KRW", "SGD", "HKD", "TRY", "ILS", "AED",
}
MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
MONTHS.update({"sept": 9, "janv": 1, "févr": 2, "mär": 3, "mai": 5, "juin": 6, "juil": 7,
               "okt": 10, "dez": 12, "déc": 12})

_SYM_RE = "|".join(re.escape(s) for s in sorted(CURRENCY_SYMBOLS, key=len, reverse=True))
_CODE_RE = "|".join(sorted(CURRENCY_CODES))
_NUM = r"[-−+]?\(?\d[\d.,'’\u00a0\u202f ]*\d\)?|[-−+]?\(?\d\)?"
_AMOUNT_RE = re.compile(
    rf"^\s*(?P<pre>{_SYM_RE}|{_CODE_RE})?\s*(?P<num>{_NUM})\s*(?P<post>{_SYM_RE}|{_CODE_RE})?"
    r"\s*$",
    re.IGNORECASE,
)


@dataclass
class KeyValue:
    key: str
    value: str
    type: str  # date | amount | number | text
    normalized: Any = None
    currency: str | None = None
    ambiguous: bool = False
    box: Box | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"key": self.key, "value": self.value, "type": self.type,
                             "normalized": self.normalized}
        if self.currency:
            d["currency"] = self.currency
        if self.ambiguous:
            d["ambiguous"] = True
        if self.box is not None:
            d["box"] = self.box.as_list()
        return d


# --- normalisers ---------------------------------------------------------------------------


def parse_number(text: str) -> float | None:
    """'1,234.50' -> 1234.5; '1.234,50' -> 1234.5; '1 234,5' -> 1234.5; '(12.00)' -> -12."""
    s = text.strip().replace("−", "-").replace("\u00a0", " ").replace("\u202f", " ")
    neg = False
    if s.startswith("(") and s.endswith(")"):
        neg, s = True, s[1:-1]
    if s.startswith("-"):
        neg, s = True, s[1:]
    elif s.startswith("+"):
        s = s[1:]
    s = s.replace(" ", "").replace("'", "").replace("’", "")
    if not s or not re.fullmatch(r"\d[\d.,]*", s) or s[-1] in ".,":
        return None
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        dec = "." if last_dot > last_comma else ","
        thou = "," if dec == "." else "."
        intpart, frac = s[: s.rfind(dec)], s[s.rfind(dec) + 1:]
        if "," in frac or "." in frac:
            return None
        s = intpart.replace(thou, "") + "." + frac
    elif last_comma >= 0:
        groups = s.split(",")
        if len(groups) > 2 or (len(groups) == 2 and len(groups[1]) == 3):
            if not all(len(g) == 3 for g in groups[1:]):
                return None
            s = s.replace(",", "")  # thousands
        else:
            s = s.replace(",", ".")  # decimal comma
    elif s.count(".") > 1:
        groups = s.split(".")
        if not all(len(g) == 3 for g in groups[1:]):
            return None
        s = s.replace(".", "")  # 1.234.567
    try:
        v = float(s)
    except ValueError:
        return None
    return -v if neg else v


def parse_amount(text: str) -> tuple[float, str | None] | None:
    """Amount and ISO currency: '€ 1,234.50' -> (1234.5, 'EUR'); '12 USD' -> (12.0, 'USD')."""
    m = _AMOUNT_RE.match(text)
    if not m:
        return None
    v = parse_number(m.group("num"))
    if v is None:
        return None
    cur = m.group("pre") or m.group("post")
    code = None
    if cur:
        code = CURRENCY_SYMBOLS.get(cur) or CURRENCY_SYMBOLS.get(cur.upper())
        if code is None and cur.upper() in CURRENCY_CODES:
            code = cur.upper()
    return v, code


def _year(y: str) -> int:
    n = int(y)
    if len(y) == 2:
        n += 2000 if n < 70 else 1900
    return n


def parse_date(text: str, *, dayfirst: bool = True) -> tuple[str, bool] | None:
    """ISO date and whether the day/month order was a guess. None if not a date.

    The common shapes are read here (microseconds); a value these miss that has a month
    name and a 4-digit year ('Tuesday, 5 March 2024', '5-Mar-2024') goes to `dateparser`
    in strict mode (milliseconds, so only then). Measured side by side in the bench
    (`documents.kv_libraries`)."""
    got = _parse_date_own(text, dayfirst=dayfirst)
    if got is None and _DATEPARSER_WORTH.search(text) and re.search(r"\b\d{4}\b", text):
        return _parse_date_dateparser(text, dayfirst=dayfirst)
    return got


_DATEPARSER_WORTH = re.compile(r"[^\W\d_]{3,}")  # a word: a month name may be in it


def _parse_date_dateparser(text: str, *, dayfirst: bool) -> tuple[str, bool] | None:
    try:
        import dateparser
    except ImportError:
        return None
    d = dateparser.parse(text, languages=["en", "fr", "de", "es", "it", "nl", "pt"],
                         settings={"DATE_ORDER": "DMY" if dayfirst else "MDY",
                                   "REQUIRE_PARTS": ["day", "month", "year"],
                                   "STRICT_PARSING": True})
    return (d.date().isoformat(), False) if d else None


def _parse_date_own(text: str, *, dayfirst: bool = True) -> tuple[str, bool] | None:
    s = text.strip().rstrip(".").strip()
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", s)
    if m:
        return _iso(int(m[1]), int(m[2]), int(m[3]), False)
    m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})", s)
    if m:
        a, b, y = int(m[1]), int(m[2]), _year(m[3])
        if a > 12 >= b:
            return _iso(y, b, a, False)
        if b > 12 >= a:
            return _iso(y, a, b, False)
        amb = a != b
        return _iso(y, b, a, amb) if dayfirst else _iso(y, a, b, amb)
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?\.?\s+([A-Za-zéä]{3,9})\.?,?\s+(\d{4})", s)
    if m and _month(m[2]):
        return _iso(int(m[3]), _month(m[2]), int(m[1]), False)
    m = re.fullmatch(r"([A-Za-zéä]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})", s)
    if m and _month(m[1]):
        return _iso(int(m[3]), _month(m[1]), int(m[2]), False)
    return None


def _month(name: str) -> int:
    n = name.lower()
    return MONTHS.get(n[:4], 0) or MONTHS.get(n[:3], 0)


def _iso(y: int, m: int, d: int, amb: bool) -> tuple[str, bool] | None:
    try:
        return dt.date(y, m, d).isoformat(), amb
    except ValueError:
        return None


def type_value(value: str, *, dayfirst: bool = True) -> dict[str, Any]:
    """Typed reading of one value string."""
    v = value.strip()
    d = parse_date(v, dayfirst=dayfirst)
    if d is not None:
        return {"type": "date", "normalized": d[0], "ambiguous": d[1]}
    a = parse_amount(v)
    if a is not None:
        if a[1] is not None or re.search(r"\d[.,]\d{2}$", v):
            return {"type": "amount", "normalized": a[0], "currency": a[1]}
        return {"type": "number", "normalized": a[0]}
    return {"type": "text", "normalized": v}


# --- pair finding --------------------------------------------------------------------------

_KEY = r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ0-9 .#/&()'-]{0,40}?"
_KEY_FULL = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ0-9 .#/&()'-]{0,40}")
_COLON = re.compile(r"(?<!\d)\s*[:：]\s*|(?<=\d)\s*[:：]\s*(?!\d)")
_SPACED = re.compile(rf"^\s*({_KEY})(?:\s{{2,}}|\t+)(\S.*)$")


def _split_value_key(seg: str) -> tuple[str, str]:
    """Text between two colons = value of the left key + the right key."""
    parts = re.split(r"\s{2,}|\t+", seg.strip())
    if len(parts) >= 2:
        return " ".join(parts[:-1]).strip(), parts[-1].strip()
    words = seg.split()
    # the longest typed (amount/date) prefix is the value; the rest is the next key
    for k in range(len(words) - 1, 0, -1):
        head = " ".join(words[:k])
        if type_value(head)["type"] in {"amount", "date", "number"}:
            return head, " ".join(words[k:])
    # glued by OCR: "12.00Fee"
    m = re.match(r"^(.*\d)([A-Za-zÀ-ÿ].*)$", seg.strip())
    if m and type_value(m.group(1))["type"] in {"amount", "date", "number"}:
        return m.group(1).strip(), m.group(2).strip()
    if len(words) >= 2:
        n = 2 if len(words) >= 3 and len(words[-1]) <= 3 else 1
        return " ".join(words[:-n]), " ".join(words[-n:])
    return "", seg.strip()


def _pairs_in_line(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    colons = list(_COLON.finditer(text))
    if colons and _KEY_FULL.fullmatch(text[: colons[0].start()].strip() or "-"):
        keys = [text[: colons[0].start()].strip()]
        values: list[str] = []
        for i, m in enumerate(colons):
            seg = text[m.end(): colons[i + 1].start() if i + 1 < len(colons) else len(text)]
            if i + 1 < len(colons):
                v, k = _split_value_key(seg)
                values.append(v)
                keys.append(k)
            else:
                values.append(seg.strip())
        for k, v in zip(keys, values, strict=False):
            if k and v:
                out.append((k, v))
        return out
    m2 = _SPACED.match(text)
    if m2:
        return [(m2.group(1).strip(), m2.group(2).strip())]
    # "Total € 1,234.50": a word key then a trailing amount or date
    m3 = re.match(rf"^\s*({_KEY})\s+((?:{_SYM_RE}|{_CODE_RE})?\s*[-(]?\d[\d.,/ ]*\)?\s*"
                  rf"(?:{_SYM_RE}|{_CODE_RE})?)\s*$", text)
    if m3 and type_value(m3.group(2))["type"] in {"amount", "date"}:
        return [(m3.group(1).strip(), m3.group(2).strip())]
    return out


def extract_kv(lines: list[OcrLine] | list[str], *, dayfirst: bool = True) -> list[KeyValue]:
    """Key-value pairs in reading order (rows top to bottom)."""
    plain = bool(lines) and not isinstance(lines[0], OcrLine)
    ocr_lines = [ln if isinstance(ln, OcrLine)
                 else OcrLine(str(ln), 1.0, Box(0, i * 10, 1, i * 10 + 9))
                 for i, ln in enumerate(lines)]
    out: list[KeyValue] = []
    for row in group_rows(ocr_lines):
        used: set[int] = set()
        for i, ln in enumerate(row):
            pairs = _pairs_in_line(ln.text)
            # key-only box ("Invoice No:") followed by a value box on the same row
            if not pairs and i + 1 < len(row) and i + 1 not in used:
                key_txt = ln.text.strip()
                nxt = row[i + 1].text.strip()
                keyish = key_txt.endswith((":", "：")) or bool(
                    re.fullmatch(_KEY, key_txt)
                    and type_value(nxt, dayfirst=dayfirst)["type"] in {"amount", "date"})
                if keyish and not _pairs_in_line(nxt):
                    pairs = [(key_txt.rstrip(":：").strip(), nxt)]
                    used.add(i + 1)
            if i in used:
                continue
            for k, v in pairs:
                t = type_value(v, dayfirst=dayfirst)
                out.append(KeyValue(key=k, value=v, type=t["type"], normalized=t["normalized"],
                                    currency=t.get("currency"), ambiguous=bool(t.get("ambiguous")),
                                    box=None if plain else ln.box))
    return out
