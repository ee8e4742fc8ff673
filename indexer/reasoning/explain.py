"""Step-by-step explanations of why a result matched, built only from stored evidence and
the retrieval facts of this search. Each step carries the evidence it rests on, and every
number or quoted label in a step's text appears in that step's evidence (a test parses the
text and checks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from indexer.domain import Step
from indexer.reasoning.counting import COUNT_WORDS, object_match, query_objects
from indexer.reasoning.evidence import find_concept
from indexer.stores.catalog import ViewRecord, search_terms

LIST_NAMES = {
    "semantic": "text-to-image (semantic) vectors",
    "caption": "caption and OCR text vectors",
    "lexical": "word matches in caption, tags and OCR",
    "visual": "visual features of the example image",
    "image_semantic": "concepts of the example image",
    "image_caption": "captions near the example image",
}


def _fmt(x: float, digits: int = 3) -> str:
    """Two decimals of the value rounded as stored in the evidence, so text and evidence
    always agree."""
    return f"{round(float(x), digits):.2f}"


def explain(
    query: str | None, view: ViewRecord, matched: Sequence[Any], relevance: float | None,
    threshold: float, *, near_labels: dict[str, tuple[str, float]] | None = None,
) -> list[Step]:
    """`matched`: ListHit-like objects (list_name, rank, score). `near_labels`: for query terms
    with no literal match, the closest stored tag label and its text similarity."""
    d = view.description
    steps: list[Step] = []
    terms = search_terms(query or "")
    if terms:
        steps.append(Step(
            text="The query asks for: " + ", ".join(f"'{t}'" for t in terms) + ".",
            evidence=[{"type": "query", "label": t} for t in terms],
        ))
    for term in terms:
        if term in COUNT_WORDS:  # "two cats": the count is checked against boxes below
            continue
        found = find_concept(d, term)
        if found:
            best = sorted(found, key=lambda m: -m.score)[:3]
            parts = []
            for m in best:
                where = {"tag": f"{m.source} tag", "object": "detected object",
                         "ocr": "text read in the image"}.get(m.kind, m.kind)
                parts.append(f"{where} '{m.label}' ({_fmt(m.score)})")
            steps.append(Step(
                text=f"'{term}' is supported by " + "; ".join(parts) + ".",
                evidence=[{"type": "query", "label": term}]
                + [m.as_evidence(view.id) for m in best],
            ))
        elif near_labels and term in near_labels:
            label, sim = near_labels[term]
            tag = next((t for t in d.tags if t.label == label), None)
            if tag is not None:
                steps.append(Step(
                    text=(f"No tag names '{term}' literally; the closest tag is '{label}' "
                          f"({_fmt(tag.score)}), with text similarity {_fmt(sim)}."),
                    evidence=[{"type": "query", "label": term},
                              {"type": "tag", "view_id": view.id, "label": label,
                               "score": round(tag.score, 3), "source": tag.source,
                               "similarity": round(sim, 3)}],
                ))
        else:
            steps.append(Step(
                text=f"No stored tag, object or text of this view matches '{term}'.",
                evidence=[{"type": "query", "label": term}],
            ))
    om = object_match(query_objects(query), d, view.id) if query else None
    for text, ev in (om.steps if om is not None else []):  # counts and relations by boxes
        steps.append(Step(text=text, evidence=ev))
    for h in sorted(matched, key=lambda h: h.rank)[:3]:
        name = LIST_NAMES.get(h.list_name, h.list_name)
        steps.append(Step(
            text=f"It ranked #{h.rank} by {name} (score {_fmt(h.score, 4)}).",
            evidence=[{"type": "retrieval", "list": h.list_name, "rank": h.rank,
                       "score": round(float(h.score), 4)}],
        ))
    if view.t_start is not None and view.t_end is not None:
        steps.append(Step(
            text=f"The matching shot runs from {view.t_start:.1f}s to {view.t_end:.1f}s.",
            evidence=[{"type": "shot", "view_id": view.id, "t_start": view.t_start,
                       "t_end": view.t_end}],
        ))
    if relevance is not None:
        verdict = "a good match" if relevance >= threshold else "a weak match"
        steps.append(Step(
            text=(f"Combined relevance {_fmt(relevance, 4)} against the threshold "
                  f"{_fmt(threshold)}: {verdict}."),
            evidence=[{"type": "relevance", "score": round(relevance, 4),
                       "threshold": threshold}],
        ))
    return steps
