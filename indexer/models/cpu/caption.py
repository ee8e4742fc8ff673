"""One plain sentence assembled only from measured evidence: detected objects (with counts
and the relations their boxes show), classifier tags, OCR lines. Every noun in it is a stored
object label, tag label or OCR text ("A person to the left of a cup on a dining table; the
text reads 'OPEN'."). A page that is mostly text is called a document page."""

from __future__ import annotations

from indexer.domain import DetectedObject, OcrLine, Tag
from indexer.reasoning.counting import MIN_BOX
from indexer.reasoning.evidence import is_on, relation

NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_IRREGULAR = {"person": "people", "mouse": "mice", "knife": "knives", "skis": "skis",
              "sheep": "sheep", "scissors": "scissors", "face": "faces"}
SUPPORTS = ("dining table", "couch", "bed", "bench", "chair", "desk", "table")
# ImageNet classes a text page is often mistaken for ("web site" above all)
_PAGE_CLASSES = {"web site", "menu", "envelope", "book jacket", "crossword puzzle",
                 "comic book", "packet", "binder", "notebook"}


def plural(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    head, _, last = word.rpartition(" ")
    if last in _IRREGULAR:
        return f"{head} {_IRREGULAR[last]}".strip()
    if last.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def counted(n: int, word: str) -> str:
    if n == 1:
        return article(word)
    return f"{NUMBERS[n] if n < len(NUMBERS) else n} {plural(word)}"


def is_document(tags: list[Tag], ocr: list[OcrLine], kind: str) -> bool:
    words = sum(len(line.text.split()) for line in ocr)
    top = next((t for t in tags if t.source == "classifier"), None)
    return words >= 12 or (kind == "page" and words >= 3) or (
        words >= 3 and top is not None and top.label in _PAGE_CLASSES)


def _groups(objects: list[DetectedObject]) -> list[tuple[str, list[DetectedObject]]]:
    by: dict[str, list[DetectedObject]] = {}
    for o in objects:
        if o.score >= MIN_BOX or o.label == "face":  # the floor counts use too
            by.setdefault(o.label, []).append(o)
    if "person" in by:  # faces are the people's faces, not more things
        by.pop("face", None)
    return sorted(by.items(), key=lambda kv: -max(o.box.area for o in kv[1]))


def _rel_words(rel: str) -> str:
    return {"left of": "to the left of", "right of": "to the right of"}.get(rel, rel)


def object_phrase(objects: list[DetectedObject]) -> str:
    groups = _groups(objects)
    if not groups:
        return ""
    support = None
    for label, objs in groups:
        if label in SUPPORTS:
            big = max(objs, key=lambda o: o.box.area)
            if any(is_on(o.box, big.box) for lb, os_ in groups if lb != label for o in os_):
                support = (label, big)
                break
    rest = [(lb, os_) for lb, os_ in groups if support is None or lb != support[0]][:3]
    if not rest and support is not None:
        rest, support = [(support[0], dict(groups)[support[0]])], None
    if len(rest) == 2 and len(rest[0][1]) == 1 and len(rest[1][1]) == 1:
        (la, [a]), (lb, [b]) = rest
        phrase = f"{article(la)} {_rel_words(relation(a.box, b.box))} {article(lb)}"
    else:
        items = [counted(len(os_), lb) for lb, os_ in rest]
        phrase = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    if support is not None:
        phrase += f" on {article(support[0])}"
    return phrase


def build_caption(
    tags: list[Tag],
    objects: list[DetectedObject],
    ocr: list[OcrLine],
    colors: dict,
    *,
    size: tuple[int, int] | None = None,
    kind: str = "image",
    min_p: float = 0.3,
) -> str:
    clauses: list[str] = []
    cls = [t for t in tags if t.source == "classifier"]
    document = is_document(tags, ocr, kind)
    phrase = "" if document else object_phrase(objects)
    if document:
        clauses.append("a document page")
    elif phrase:
        clauses.append(phrase)
        named = {o.label for o in objects}
        if cls and cls[0].score >= 0.5 and not any(w in cls[0].label for w in named):
            clauses.append(f"likely {article(cls[0].label)}")
    elif cls and cls[0].score >= min_p:
        clauses.append(f"a photo of {article(cls[0].label)}")
    elif cls and cls[0].score >= 0.05:
        clauses.append(f"a photo that may show {article(cls[0].label)}")
    else:
        main, bg = colors.get("main"), colors.get("background")
        clauses.append(f"a {main['name']} image on {bg['name']}" if main and bg else
                       "a photo the classifier could not name")
    text = " ".join(line.text for line in ocr).strip()
    if text:
        if len(text) > 80:
            text = text[:77].rstrip() + "..."
        clauses.append(f"the text reads '{text}'")
    sentence = "; ".join(clauses)
    sentence = sentence[:1].upper() + sentence[1:]
    return sentence if sentence.endswith(".") else sentence + "."
