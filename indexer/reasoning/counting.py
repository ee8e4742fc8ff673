"""Counts and spatial relations of detected objects, asked of a query or a question.

A query such as "two dogs on a sofa" names objects the detectors know (80 COCO classes,
people, faces), how many of them, and how they stand to each other. `object_match` checks a
view's stored boxes against that: which named objects were boxed, whether the count is the
one asked for, whether each relation holds between the boxes. Search uses it as evidence
(and to rank a contradicted count or relation lower); the follow-up answers use the same
box geometry (`indexer.reasoning.evidence.holds`).

Only what the boxes show is claimed: a noun the detectors do not know is left out (the
classifier's tags still speak for it); a count of "a"/"an" is not an exact count ("a dog"
also matches a photo of two dogs), while "one", "two", "3" are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from indexer.domain import Description, DetectedObject
from indexer.reasoning.evidence import canonical, holds

MIN_BOX = 0.3  # a box under this score is not counted, nor named in a caption
# canonical words (evidence.SYNONYMS) whose detector label is another word
_TO_LABEL = {"phone": "cell phone", "table": "dining table", "teddy": "teddy bear"}
_EXACT_WORDS = {"one", "single", "two", "three", "four", "five", "six", "seven", "eight",
                "nine", "ten"}
COUNT_WORDS = frozenset(_EXACT_WORDS | {"several", "couple", "pair"})
_REL_WORDS = {"left_of": "left of", "right_of": "right of", "above": "above",
              "below": "below", "on": "on", "next_to": "next to"}


@lru_cache(maxsize=1)
def detector_labels() -> frozenset[str]:
    from indexer.models.cpu.objects import COCO_LABELS

    return frozenset(COCO_LABELS) | {"person", "face"}


def detector_label(noun: str) -> str | None:
    """The detector label a noun means ("sofa" -> "couch", "people" -> "person"), or None
    when no detector knows it."""
    known = detector_labels()
    n = noun.lower().strip()
    if n in known:
        return n
    c = canonical(n)
    c = _TO_LABEL.get(c, c)
    if c in known:
        return c
    words = n.split()
    if len(words) > 1:  # "coffee cup", "polar bear": the head word
        h = canonical(words[-1])
        h = _TO_LABEL.get(h, h)
        return h if h in known else None
    return None


def boxes_of(d: Description, label: str, min_score: float = MIN_BOX) -> list[DetectedObject]:
    """The stored boxes of one detector label (faces count at any score: the face detector
    reports few and calibrated ones)."""
    return [o for o in d.objects if o.label == label
            and (o.score >= min_score or o.label == "face")]


@dataclass
class Wanted:
    label: str  # detector label
    noun: str  # the query's own words
    count: int | None  # None: any number ("a dog", "dogs")


@dataclass
class QueryObjects:
    objects: list[Wanted] = field(default_factory=list)
    relations: list[tuple[int, str, int]] = field(default_factory=list)  # (a, kind, b)


def parse_query(text: str) -> QueryObjects:
    """The detector-known objects of a query, their exact counts and relations; empty when
    the query names none (or the grammar cannot read it)."""
    from indexer.errors import InvalidRequest
    from indexer.generation.prompt import parse

    try:
        plan = parse(text)
    except InvalidRequest:
        return QueryObjects()
    out = QueryObjects()
    index: dict[int, int] = {}
    for i, o in enumerate(plan.objects):
        label = detector_label(o.noun)
        if label is None:
            continue
        exact = bool(set(o.text.split()) & _EXACT_WORDS) or any(
            w.isdigit() for w in o.text.split())
        index[i] = len(out.objects)
        out.objects.append(Wanted(label, o.noun, o.count if exact else None))
    for r in plan.relations:
        if r.subject in index and r.object in index:
            out.relations.append((index[r.subject], r.kind, index[r.object]))
    if plan.scene is not None and plan.scene.preposition == "on":
        label = detector_label(plan.scene.noun)  # "a cup on a table": the table is boxed too
        if label is not None and out.objects:
            out.objects.append(Wanted(label, plan.scene.noun, None))
            out.relations.append((len(out.objects) - 2, "on", len(out.objects) - 1))
    return out


@lru_cache(maxsize=512)
def query_objects(text: str) -> QueryObjects:
    """parse_query, cached: search scores every candidate against the same query."""
    return parse_query(text)


@dataclass
class ObjectMatch:
    evidence: float  # 0..1: mean best box score of the named objects
    contradictions: int  # counts and relations the boxes contradict
    steps: list[tuple[str, list[dict[str, Any]]]]  # explanation text + its evidence


def _ev(view_id: str, o: DetectedObject) -> dict[str, Any]:
    return {"type": "object", "view_id": view_id, "label": o.label, "score": round(o.score, 3),
            "box": o.box.as_list(), "source": o.source or "detector"}


def object_match(q: QueryObjects, d: Description, view_id: str = "") -> ObjectMatch | None:
    """How the view's boxes answer the query's objects; None when it names none."""
    if not q.objects:
        return None
    found = [boxes_of(d, w.label) for w in q.objects]
    steps: list[tuple[str, list[dict[str, Any]]]] = []
    bad = 0
    scores = []
    for w, boxes in zip(q.objects, found, strict=True):
        scores.append(max((o.score for o in boxes), default=0.0))
        n = len(boxes)
        ev = [_ev(view_id, o) for o in boxes[:6]]
        if w.count is not None and n and n != w.count:
            bad += 1
            steps.append((f"The query asks for {w.count} '{w.label}'; the detector boxed {n}: "
                          "the count does not match.",
                          [{"type": "count", "label": w.label, "count": n,
                            "wanted": w.count}, *ev]))
        elif w.count is not None and n:
            steps.append((f"The query asks for {w.count} '{w.label}'; the detector boxed {n}.",
                          [{"type": "count", "label": w.label, "count": n,
                            "wanted": w.count}, *ev]))
    for a, kind, b in q.relations:
        la, lb = found[a], found[b]
        if not la or not lb or q.objects[a].label == q.objects[b].label:
            continue
        ok = _relation_holds(kind, la, lb)
        words = _REL_WORDS[kind]
        if not ok:
            bad += 1
        steps.append((f"'{q.objects[a].label}' {'is' if ok else 'is not'} {words} "
                      f"'{q.objects[b].label}' by their boxes.",
                      [{"type": "relation", "label": words, "holds": ok},
                       _ev(view_id, la[0]), _ev(view_id, lb[0])]))
    return ObjectMatch(sum(scores) / len(scores), bad, steps)


def _relation_holds(kind: str, a: list[DetectedObject], b: list[DetectedObject]) -> bool:
    """Some boxed `a` stands in relation `kind` to some boxed `b` ("a dog on a sofa" holds
    when one dog is on one sofa)."""
    rel = _REL_WORDS[kind]
    return any(holds(rel, x.box, y.box) for x in a for y in b)
