"""Resolve what a follow-up question refers to among the results of a session.

"the second one", "the first three", "these", "the video", "at 0:12", "the one with the
sign", "compare 1 and 4", "it" (the previous turn's subject).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from indexer.reasoning.evidence import find_concept
from indexer.stores.catalog import ViewRecord

ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
    "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7, "8th": 8,
    "9th": 9, "10th": 10,
}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10}
KIND_WORDS = {"video": "video", "clip": "video", "movie": "video", "document": "document",
              "pdf": "document", "page": "document", "photo": "image", "picture": "image",
              "image": "image"}
ALL_WORDS = re.compile(r"\b(these|them|they|all|each|every|any of|which of|which one|"
                       r"which ones|which result|which image|which photo|those)\b")
_TIME = re.compile(r"\b(?:at|after|before|from|around|until)\s+(\d{1,2}):(\d{2})\b|"
                   r"\b(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds)\b")


@dataclass
class ResultRef:
    """What a session remembers of one result: its position and best view."""

    index: int  # 0-based position in the result list
    media_id: str
    media_kind: str
    view: ViewRecord
    frames: list[ViewRecord] = field(default_factory=list)  # every shot, for videos


@dataclass
class Resolution:
    indices: list[int]
    time_s: float | None = None
    how: str = "default"
    all_results: bool = False


def parse_time(question: str) -> float | None:
    m = _TIME.search(question.lower())
    if not m:
        return None
    if m.group(1) is not None:
        return int(m.group(1)) * 60 + int(m.group(2))
    return float(m.group(3))


def resolve(question: str, results: Sequence[ResultRef],
            previous: Sequence[int] = ()) -> Resolution:
    q = question.lower()
    n = len(results)
    t = parse_time(q)

    def ok(ix: list[int]) -> list[int]:
        return [i for i in dict.fromkeys(ix) if 0 <= i < n]

    # "the first three", "top 3", "first 2"
    m = re.search(r"\b(?:first|top)\s+(\d+|" + "|".join(NUMBERS) + r")\b", q)
    if m:
        k = int(m.group(1)) if m.group(1).isdigit() else NUMBERS[m.group(1)]
        return Resolution(ok(list(range(k))), t, "first-k")
    # "compare 1 and 4", "results 2, 3 and 5", "#2", "number 3", "image 4"
    m = re.search(r"\b(?:compare|between|results?|images?|photos?|numbers?|items?|#)\s*"
                  r"((?:#?\d+\s*(?:,|and|&|vs\.?|with|to)?\s*)+)", q)
    if m:
        nums = [int(x) - 1 for x in re.findall(r"\d+", m.group(1))]
        if nums:
            return Resolution(ok(nums), t, "numbers")
    ords = [ORDINALS[w] - 1 for w in re.findall(r"\b(" + "|".join(ORDINALS) + r")\b", q)]
    if re.search(r"\b(last|final)\b", q):
        ords.append(n - 1)
    if ords:
        return Resolution(ok(ords), t, "ordinal")
    # "the one with the sign", "the one with a cat"
    m = re.search(r"\bthe (?:one|image|photo|picture|result|video)s? (?:with|showing|that has|"
                  r"that shows|where)\s+(?:a |an |the |some )?([\w' -]+?)(?:\?|$|,| and | in | "
                  r"on )", q + "?")
    if m:
        concept = m.group(1).strip()
        hits = [r.index for r in results if _has(r, concept)]
        if hits:
            return Resolution(ok(hits[:1]), t, f"with {concept}")
    for word, kind in KIND_WORDS.items():
        if re.search(rf"\bthe {word}\b", q):
            hits = [r.index for r in results if r.media_kind == kind]
            if hits:
                return Resolution(ok(hits[:1]), t, f"the {word}")
    if ALL_WORDS.search(q):
        return Resolution(list(range(n)), t, "all", all_results=True)
    if re.search(r"\b(it|that one|this one|that|this)\b", q) and previous:
        return Resolution(ok(list(previous)), t, "previous")
    if previous:
        return Resolution(ok(list(previous)), t, "previous")
    return Resolution(ok([0]), t, "top result")


def _has(r: ResultRef, concept: str) -> bool:
    views = r.frames or [r.view]
    if concept in ("sign", "text", "writing", "words"):
        return any(v.description.ocr for v in views)
    return any(find_concept(v.description, concept) for v in views)


_REF_PHRASE = re.compile(
    r"\s*\b(?:in|of|for|from|on)\s+(?:(?:result|image|photo|picture|item|number|video|"
    r"document|page)s?\s*#?\d+(?:\s*(?:,|and|&)\s*#?\d+)*|#\d+|the\s+(?:(?:" +
    "|".join(ORDINALS) + r"|last|top)\s+)?(?:one|ones|image|photo|picture|result|video|"
    r"document|clip)s?|(?:it|them|these|those|this one|that one))\b"
)


def strip_references(question: str) -> str:
    """The question without the words that only say which result it is about ("in result
    2", "of the first one", "in it"), so what remains is the thing asked about."""
    return _REF_PHRASE.sub("", question).strip()
