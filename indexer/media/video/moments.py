"""Shot summaries (a video's summary view) and moments (adjacent shots merged)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from indexer.domain import Description, OcrLine, Tag
from indexer.media.video.values import Moment

log = logging.getLogger(__name__)


def _times(x: Any) -> tuple[float, float]:
    if isinstance(x, tuple | list):
        return float(x[0]), float(x[1])
    return float(x.t_start), float(x.t_end)


def summarize_shots(
    descriptions: Sequence[tuple[Any, Description]],
    *,
    max_tags: int = 20,
    max_ocr_lines: int = 50,
) -> Description:
    """One Description for a whole video, built only from the shots' own evidence.

    ``descriptions`` pairs shot times — a ``(t_start, t_end)`` tuple or a ``Shot`` — with
    that shot's Description. A tag's score is the duration-weighted mean of its per-shot
    score over the whole video (a tag on screen throughout at 0.9 scores 0.9; on a tenth of
    it, 0.09), so "videos about X" rank by how much of the video shows X.
    """
    if not descriptions:
        return Description(caption="", extra={"shots": 0, "duration_s": 0.0})
    spans = [_times(t) for t, _ in descriptions]
    durs = [max(1e-3, b - a) for a, b in spans]
    total = sum(durs)
    tag_w: dict[str, float] = {}
    tag_label: dict[str, str] = {}
    tag_src: dict[str, Counter[str]] = {}
    tag_shots: dict[str, list[int]] = {}
    obj_shots: dict[str, list[int]] = {}
    obj_max: Counter[str] = Counter()
    obj_secs: dict[str, float] = {}
    ocr: dict[str, OcrLine] = {}
    for i, ((_, desc), dur) in enumerate(zip(descriptions, durs, strict=True)):
        best: dict[str, Tag] = {}
        for tag in desc.tags:
            key = tag.label.strip().lower()
            if key and (key not in best or tag.score > best[key].score):
                best[key] = tag
        for key, tag in best.items():
            tag_w[key] = tag_w.get(key, 0.0) + tag.score * dur
            tag_label.setdefault(key, tag.label.strip())
            tag_src.setdefault(key, Counter())[tag.source] += 1
            tag_shots.setdefault(key, []).append(i)
        per_shot = Counter(o.label.strip().lower() for o in desc.objects if o.label.strip())
        for label, cnt in per_shot.items():
            obj_shots.setdefault(label, []).append(i)
            obj_max[label] = max(obj_max[label], cnt)
            obj_secs[label] = obj_secs.get(label, 0.0) + dur
        for line in desc.ocr:
            key = " ".join(line.text.split()).lower()
            if not key:
                continue
            if key not in ocr:
                ocr[key] = OcrLine(" ".join(line.text.split()), line.score, line.box)
            elif line.score > ocr[key].score:
                ocr[key] = OcrLine(ocr[key].text, line.score, ocr[key].box)
    ranked = sorted(tag_w.items(), key=lambda kv: (-kv[1], kv[0]))[:max_tags]
    tags = [
        Tag(tag_label[k], round(w / total, 4), tag_src[k].most_common(1)[0][0]) for k, w in ranked
    ]
    ocr_lines = list(ocr.values())[:max_ocr_lines]
    start, end = min(a for a, _ in spans), max(b for _, b in spans)
    parts = [f"Video, {len(descriptions)} shots over {end - start:.1f} s"]
    main = [t.label for t in tags if t.source != "hierarchy"][:5] or [t.label for t in tags[:5]]
    if main:
        parts.append("mostly showing " + ", ".join(main))
    if obj_shots:
        objs = sorted(obj_shots, key=lambda k: (-len(obj_shots[k]), k))[:5]
        parts.append("objects: " + ", ".join(f"{k} (in {len(obj_shots[k])} shots)" for k in objs))
    if ocr_lines:
        parts.append("on-screen text: " + "; ".join(f'"{o.text}"' for o in ocr_lines[:3]))
    return Description(
        caption="; ".join(parts) + ".",
        tags=tags,
        ocr=ocr_lines,
        objects=[],
        colors={},
        extra={
            "shots": len(descriptions),
            "duration_s": round(end - start, 3),
            "tag_shots": {tag_label[k]: tag_shots[k] for k, _ in ranked},
            "object_counts": {
                k: {"shots": len(v), "max_per_shot": obj_max[k], "seconds": round(obj_secs[k], 3)}
                for k, v in obj_shots.items()
            },
        },
    )


def merge_moments(
    hits: Sequence[tuple[float, float, float] | tuple[float, float, float, int]],
    gap_s: float = 1.0,
) -> list[Moment]:
    """Merge matching shots that touch or lie within `gap_s` of each other into moments.

    Each hit is ``(t_start, t_end, score)`` (its shot index is its position in `hits`) or
    ``(t_start, t_end, score, shot_index)``. A moment scores as its best shot. Moments come
    back in time order.
    """
    items = []
    for pos, h in enumerate(hits):
        a, b, s = float(h[0]), float(h[1]), float(h[2])
        idx = int(h[3]) if len(h) > 3 else pos  # type: ignore[misc]
        if b < a:
            a, b = b, a
        items.append((a, b, s, idx))
    items.sort(key=lambda x: (x[0], x[1]))
    out: list[Moment] = []
    for a, b, s, idx in items:
        if out and a - out[-1].t_end <= gap_s:
            m = out[-1]
            m.t_end = max(m.t_end, b)
            m.score = max(m.score, s)
            m.shot_indices.append(idx)
        else:
            out.append(Moment(a, b, s, [idx]))
    return out
