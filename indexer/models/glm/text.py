"""Text post-processing shared by the glm and openai backends: reasoning blocks, GLM control
tokens, numbered steps."""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexer.domain import Step

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# GLM control tokens that may survive decoding with skip_special_tokens=False.
_CONTROL = re.compile(
    r"<\|(?:endoftext|user|assistant|system|observation|begin_of_image|end_of_image|"
    r"begin_of_video|end_of_video|begin_of_audio|end_of_audio|image|video|"
    r"begin_of_transcription|end_of_transcription|code_prefix|code_middle|code_suffix)\|>"
    r"|\[gMASK\]|\[sMASK\]|\[MASK\]|<sop>|<eop>|/nothink"
)
_ANSWER_TAGS = re.compile(r"</?answer>")


@dataclass
class SplitOutput:
    thinking: str
    answer: str
    truncated: bool  # the reasoning block never closed (generation hit its token limit)


def strip_control(text: str) -> str:
    return _CONTROL.sub("", text)


def split_thinking(raw: str, *, opened: bool = False) -> SplitOutput:
    """Separate `<think>...</think>` from the answer.

    opened=True: the prompt itself ended with `<think>` (a template that opens the block), so
    the output starts inside it. An unclosed block means the whole output is reasoning.
    """
    text = strip_control(raw)
    if opened and not text.lstrip().startswith(THINK_OPEN):
        text = THINK_OPEN + text
    start = text.find(THINK_OPEN)
    if start < 0:
        return SplitOutput("", _clean(text.replace(THINK_CLOSE, "")), False)
    end = text.find(THINK_CLOSE, start)
    before = text[:start]
    if end < 0:
        return SplitOutput(text[start + len(THINK_OPEN) :].strip(), _clean(before), True)
    thinking = text[start + len(THINK_OPEN) : end].strip()
    answer = before + text[end + len(THINK_CLOSE) :]
    return SplitOutput(thinking, _clean(answer), False)


def _clean(text: str) -> str:
    return _ANSWER_TAGS.sub("", text).strip()


_VIEW_REF = re.compile(r"\b(?:image|picture|view|frame|page)\s*#?\s*(\d+)", re.I)
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")


def steps_from_thinking(thinking: str, view_ids: list[str] | None = None) -> list[Step]:
    """Cut a reasoning block into steps: paragraphs, else lines, else sentences. A step that
    names 'image N' carries that view as evidence."""
    thinking = thinking.strip()
    if not thinking:
        return []
    parts = [p for p in re.split(r"\n\s*\n", thinking) if p.strip()]
    if len(parts) == 1:
        parts = [p for p in thinking.splitlines() if p.strip()]
    if len(parts) == 1:
        parts = [p for p in re.split(r"(?<=[.!?])\s+", thinking) if p.strip()]
    steps = []
    for part in parts:
        body = _NUMBERED.sub("", " ".join(part.split()))
        evidence = []
        if view_ids:
            for m in _VIEW_REF.finditer(body):
                i = int(m.group(1))
                if 1 <= i <= len(view_ids):
                    ev = {"view_id": view_ids[i - 1]}
                    if ev not in evidence:
                        evidence.append(ev)
        steps.append(Step(text=body, evidence=evidence))
    return steps


def referenced_views(text: str, view_ids: list[str]) -> list[str]:
    """View ids named in an answer as 'image N'; all of them when none is named."""
    named = []
    for m in _VIEW_REF.finditer(text):
        i = int(m.group(1))
        if 1 <= i <= len(view_ids) and view_ids[i - 1] not in named:
            named.append(view_ids[i - 1])
    return named or list(view_ids)
