"""Parse GLM-4.5V grounding output into pixel boxes.

GLM-4.5V marks grounded regions as `<|begin_of_box|>[[x1, y1, x2, y2]]<|end_of_box|>` with
coordinates normalised to 0-1000 over the image it was shown. In practice the inside of a box
comes in several bracket styles -- `[x1,y1,x2,y2]`, `[[...]]`, `[[...],[...]]`, `(...)`,
`<...>`, sometimes with floats or stray spaces -- and one box span may hold several boxes. Some
servers also drop the special tokens and leave only `[[...]]`; `parse_boxes(..., bare=True)`
accepts that too. Anything that is not a multiple of four numbers is reported, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from indexer.domain import Box

BOX_START = "<|begin_of_box|>"
BOX_END = "<|end_of_box|>"
NORM = 1000.0

_SPAN = re.compile(re.escape(BOX_START) + r"(.*?)" + re.escape(BOX_END), re.DOTALL)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# A bare bracketed group of exactly four numbers: [a,b,c,d], (a,b,c,d), <a,b,c,d>
_BARE = re.compile(
    r"[\[(<]\s*\[?\s*([-+]?\d+(?:\.\d+)?\s*,\s*[-+]?\d+(?:\.\d+)?\s*,\s*"
    r"[-+]?\d+(?:\.\d+)?\s*,\s*[-+]?\d+(?:\.\d+)?)\s*\]?\s*[\])>]"
)
_LABEL_STOP = re.compile(r"[.!?\n:;]")


@dataclass(frozen=True)
class NormBox:
    """A box in GLM's 0-1000 space, with the text that introduced it."""

    x0: float
    y0: float
    x1: float
    y1: float
    label: str = ""
    start: int = -1  # where its span starts in the parsed text

    def to_pixels(self, width: int, height: int) -> Box:
        return Box(
            x0=self.x0 / NORM * width,
            y0=self.y0 / NORM * height,
            x1=self.x1 / NORM * width,
            y1=self.y1 / NORM * height,
        )


@dataclass
class BoxParse:
    boxes: list[NormBox] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # spans that held no valid box
    spans: list[tuple[int, int]] = field(default_factory=list)  # where each box span sat


def _clamp(v: float) -> float:
    return min(NORM, max(0.0, v))


def _boxes_from_numbers(nums: list[float], label: str, start: int) -> list[NormBox] | None:
    if not nums or len(nums) % 4:
        return None
    out = []
    for i in range(0, len(nums), 4):
        x0, y0, x1, y1 = (_clamp(v) for v in nums[i : i + 4])
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        out.append(NormBox(x0, y0, x1, y1, label, start))
    return out


def _label_before(text: str, end: int, max_chars: int = 80) -> str:
    """The clause just before a box: 'the red car is at <box>' -> 'the red car is at'."""
    head = _SPAN.sub(" ", text[:end])
    head = re.sub(r"<\|[a-z_]+\|>", " ", head)
    cut = [m.end() for m in _LABEL_STOP.finditer(head)]
    clause = head[cut[-1] :] if cut else head
    clause = " ".join(clause.split())[-max_chars:]
    clause = re.sub(r"\b(is|are|at|in|located|found|the box|box)\s*$", "", clause, flags=re.I)
    return clause.strip(" ,-*")


def parse_boxes(text: str, *, bare: bool = False) -> BoxParse:
    """Every box in `text`, in order, in 0-1000 space.

    bare=True also accepts `[[x1,y1,x2,y2]]`-style groups outside box tokens (for servers that
    strip special tokens); it is only consulted when the text holds no box tokens at all.
    """
    result = BoxParse()
    for m in _SPAN.finditer(text):
        nums = [float(n) for n in _NUMBER.findall(m.group(1))]
        boxes = _boxes_from_numbers(nums, _label_before(text, m.start()), m.start())
        if boxes is None:
            result.rejected.append(m.group(1))
            continue
        result.boxes.extend(boxes)
        result.spans.append((m.start(), m.end()))
    if bare and not result.spans and BOX_START not in text:
        for m in _BARE.finditer(text):
            nums = [float(n) for n in _NUMBER.findall(m.group(1))]
            boxes = _boxes_from_numbers(nums, _label_before(text, m.start()), m.start())
            if boxes:
                result.boxes.extend(boxes)
                result.spans.append((m.start(), m.end()))
    return result


def strip_box_tokens(text: str) -> str:
    """`the car <|begin_of_box|>[[1,2,3,4]]<|end_of_box|>` -> `the car [[1,2,3,4]]`."""
    return text.replace(BOX_START, "").replace(BOX_END, "")


_VIEW_REF = re.compile(r"\b(?:image|picture|view|frame|page)\s*#?\s*(\d+)", re.I)


def view_index_for_box(text: str, span_start: int, n_views: int) -> int:
    """Which of n views (0-based) a box at span_start refers to: the last 'image N' mentioned
    before it in the same paragraph, else the first view."""
    if n_views <= 1:
        return 0
    para_start = text.rfind("\n\n", 0, span_start)
    head = text[para_start + 1 if para_start >= 0 else 0 : span_start]
    refs = [int(m.group(1)) for m in _VIEW_REF.finditer(head)]
    for r in reversed(refs):
        if 1 <= r <= n_views:
            return r - 1
    return 0
