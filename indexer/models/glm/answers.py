"""Turn a GLM reply (reasoning + answer text) into an `Answer`; shared by both GLM backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from indexer.domain import Answer, AnswerBox, Description, ViewInput
from indexer.models.glm.boxes import parse_boxes, strip_box_tokens, view_index_for_box
from indexer.models.glm.text import referenced_views, steps_from_thinking


def views_context(views: Sequence[ViewInput], descriptions: Sequence[Description]) -> str:
    """'Image 1 (page 3): caption. Text in it: ...' lines, numbering the images as sent."""
    lines = []
    for i, v in enumerate(views, 1):
        d = descriptions[i - 1] if i - 1 < len(descriptions) else None
        where = []
        if v.page is not None:
            where.append(f"page {v.page}")
        if v.t_start is not None:
            where.append(f"t={v.t_start:.1f}s")
        line = f"Image {i}" + (f" ({', '.join(where)})" if where else "")
        if d is not None and d.caption:
            line += f": {d.caption}"
        if d is not None and d.ocr_text:
            line += f" Text in it: {d.ocr_text[:500]}"
        lines.append(line)
    return "\n".join(lines)


def question_text(
    question: str, views: Sequence[ViewInput], descriptions: Sequence[Description]
) -> str:
    context = views_context(views, descriptions)
    return f"{context}\n\nQuestion: {question}" if context else question


def assemble_answer(
    answer_text: str,
    thinking_text: str,
    views: Sequence[ViewInput],
    *,
    thinking: bool,
    debug: dict[str, Any],
) -> Answer:
    """Boxes (0-1000 -> pixels of the view they name), steps from the reasoning, refs."""
    view_ids = [v.view_id for v in views]
    parsed = parse_boxes(answer_text, bare=True)
    boxes = []
    for nb in parsed.boxes if views else []:
        vi = view_index_for_box(answer_text, nb.start, len(views))
        im = views[vi].image
        boxes.append(
            AnswerBox(
                view_id=views[vi].view_id,
                label=nb.label or "box",
                box=nb.to_pixels(im.width, im.height),
            )
        )
    if parsed.rejected:
        debug["rejected_boxes"] = parsed.rejected
    text = strip_box_tokens(answer_text).strip()
    return Answer(
        text=text,
        steps=steps_from_thinking(thinking_text, view_ids) if thinking else [],
        boxes=boxes,
        refs=referenced_views(text, view_ids) if view_ids else [],
        debug=debug,
    )
