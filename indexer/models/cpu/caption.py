"""A caption assembled only from measured evidence: classifier tags, detections, OCR lines,
measured colours. Every label in it is one of the description's tags/objects/OCR texts."""

from __future__ import annotations

from indexer.domain import DetectedObject, OcrLine, Tag


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} people" if word == "person" else f"{n} {word}s"


def build_caption(
    tags: list[Tag],
    objects: list[DetectedObject],
    ocr: list[OcrLine],
    colors: dict,
    *,
    max_classes: int = 3,
    min_p: float = 0.05,
) -> str:
    parts: list[str] = []
    cls = [t for t in tags if t.source == "classifier" and t.score >= min_p][:max_classes]
    hier = [t for t in tags if t.source == "hierarchy"]
    if cls:
        lead = "likely shows" if cls[0].score >= 0.3 else "may show"
        parts.append(
            f"a photo that {lead} " + ", ".join(f"{t.label} ({t.score:.2f})" for t in cls)
        )
    else:
        parts.append("a photo the classifier could not name")
    if hier:
        parts.append("a kind of " + ", ".join(t.label for t in hier[:2]))
    counts: dict[str, int] = {}
    for o in objects:
        counts[o.label] = counts.get(o.label, 0) + 1
    for label in ("face", "person"):
        if counts.get(label):
            parts.append(_plural(counts.pop(label), label))
    shapes = [_plural(n, label) for label, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    if shapes:
        parts.append(", ".join(shapes[:4]))
    text = " ".join(line.text for line in ocr).strip()
    if text:
        if len(text) > 80:
            text = text[:77].rstrip() + "..."
        parts.append(f"text reads '{text}'")
    main, bg = colors.get("main"), colors.get("background")
    if main and bg:
        parts.append(f"{main['name']} centre on {bg['name']} background")
    return "; ".join(parts)
