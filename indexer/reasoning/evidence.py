"""Evidence items of a view and matching a concept ("cat", "people", "OPEN") against them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from indexer.domain import Box, Description

SYNONYMS: dict[str, set[str]] = {
    "person": {"person", "people", "persons", "man", "men", "woman", "women", "human",
               "humans", "child", "children", "kid", "kids", "somebody", "someone", "pedestrian",
               "pedestrians", "astronaut"},
    "face": {"face", "faces"},
    "cat": {"cat", "cats", "kitten", "kittens", "kitty"},
    "dog": {"dog", "dogs", "puppy", "puppies"},
    "car": {"car", "cars", "automobile", "vehicle"},
    "couch": {"couch", "couches", "sofa", "sofas", "settee"},
    "cup": {"cup", "cups", "mug", "mugs"},
    "tv": {"tv", "tvs", "television", "televisions"},
    "bicycle": {"bicycle", "bicycles", "bike", "bikes"},
    "motorcycle": {"motorcycle", "motorcycles", "motorbike", "motorbikes"},
    "airplane": {"airplane", "airplanes", "plane", "planes", "aeroplane", "aircraft"},
    "phone": {"phone", "phones", "smartphone", "mobile"},
    "table": {"table", "tables", "desk"},
    "teddy": {"teddy", "teddies"},
    "text": {"text", "writing", "words", "sign", "signs", "caption", "label"},
}


def singular(word: str) -> str:
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def canonical(term: str) -> str:
    t = term.lower().strip()
    for canon, words in SYNONYMS.items():
        if t in words or singular(t) in words:
            return canon
    return singular(t)


@dataclass
class Match:
    """One piece of stored evidence that supports a concept."""

    kind: str  # tag | object | ocr | color
    label: str
    score: float
    box: Box | None = None
    source: str = ""

    def as_evidence(self, view_id: str) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "view_id": view_id, "label": self.label,
                             "score": round(self.score, 3)}
        if self.source:
            d["source"] = self.source
        if self.box is not None:
            d["box"] = self.box.as_list()
        return d


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w]


def find_concept(d: Description, concept: str) -> list[Match]:
    """Evidence in `d` for `concept`: tag/object labels whose words contain it (with plural and
    a few synonyms folded), and OCR lines that contain it as a word or phrase."""
    c = canonical(concept)
    cwords = [canonical(w) for w in _words(concept)] or [c]
    out: list[Match] = []

    def label_hit(label: str) -> bool:
        lw = [canonical(w) for w in _words(label)]
        if not lw:
            return False
        if c in lw or canonical(label) == c:
            return True
        # a multi-word concept must appear as a run of words ("coffee mug")
        n = len(cwords)
        return n > 1 and any(lw[i:i + n] == cwords for i in range(len(lw) - n + 1))

    for t in d.tags:
        if label_hit(t.label):
            out.append(Match("tag", t.label, t.score, source=t.source))
    for o in d.objects:
        if label_hit(o.label):
            out.append(Match("object", o.label, o.score, box=o.box,
                             source=o.source or "detector"))
    if c == "text":  # "a sign", "any text", "writing": text read in the image is the evidence
        out += [Match("ocr", line.text, line.score, box=line.box, source="ocr") for line in d.ocr]
        return out
    phrase = " ".join(_words(concept))
    if phrase:
        for line in d.ocr:
            lt = " ".join(_words(line.text))
            if re.search(rf"\b{re.escape(phrase)}\b", lt):
                out.append(Match("ocr", line.text, line.score, box=line.box, source="ocr"))
    return out


def best_score(matches: list[Match]) -> float:
    return max((m.score for m in matches), default=0.0)


def position_words(box: Box, width: float, height: float) -> str:
    """'left', 'top right', 'centre' ... from a box's centre on the view."""
    cx, cy = box.center
    fx, fy = cx / max(width, 1.0), cy / max(height, 1.0)
    horiz = "left" if fx < 0.4 else "right" if fx > 0.6 else ""
    vert = "top" if fy < 0.4 else "bottom" if fy > 0.6 else ""
    words = " ".join(w for w in (vert, horiz) if w)
    return words or "centre"


def is_on(a: Box, b: Box) -> bool:
    """a rests on b: a's bottom edge lies in b's upper part (or just above it), a's centre is
    within b's width, and a is the smaller of the two."""
    ax, _ = a.center
    bh = max(1.0, b.y1 - b.y0)
    return (b.x0 <= ax <= b.x1 and a.area < b.area
            and b.y0 - 0.1 * bh <= a.y1 <= b.y0 + 0.75 * bh and a.y0 < b.y0 + 0.5 * bh)


def next_to(a: Box, b: Box) -> bool:
    """Side by side: vertical extents overlap, and the horizontal gap is under the larger
    box's width."""
    overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
    gap = max(a.x0, b.x0) - min(a.x1, b.x1)
    width = max(a.x1 - a.x0, b.x1 - b.x0)
    return overlap_y > 0 and gap < width


def holds(rel: str, a: Box, b: Box) -> bool:
    """Whether relation `rel` (left of, right of, above, below, next to, on) holds."""
    if rel == "on":
        return is_on(a, b)
    if rel == "next to":
        return next_to(a, b)
    return relation(a, b) == rel


def relation(a: Box, b: Box) -> str:
    """Spatial relation of a to b: 'left of', 'right of', 'above', 'below', 'overlapping'."""
    ax, ay = a.center
    bx, by = b.center
    dx, dy = ax - bx, ay - by
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"
