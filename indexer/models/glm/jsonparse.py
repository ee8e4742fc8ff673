"""Pull one JSON value out of model output, robustly, and say so when it cannot."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


@dataclass
class JsonParse:
    ok: bool
    value: Any = None
    error: str | None = None
    repaired: bool = False  # parsed only after a light repair (trailing commas, quotes, ...)


def _balanced_blocks(text: str) -> list[str]:
    """Every top-level {...} or [...] block, outermost first, string-aware."""
    blocks = []
    i = 0
    n = len(text)
    while i < n:
        if text[i] not in "{[":
            i += 1
            continue
        stack = [text[i]]
        j = i + 1
        in_str = False
        esc = False
        while j < n and stack:
            c = text[j]
            if in_str:
                if esc:
                    esc = False
                elif c == "\\":
                    esc = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "{[":
                stack.append(c)
            elif c in "}]":
                opener = stack.pop()
                if (opener, c) not in {("{", "}"), ("[", "]")}:
                    break
            j += 1
        if not stack:
            blocks.append(text[i:j])
            i = j
        else:
            i += 1
    return blocks


def _repairs(block: str) -> list[str]:
    fixed = _TRAILING_COMMA.sub(r"\1", block)
    out = [fixed]
    if "'" in fixed and '"' not in fixed:
        out.append(fixed.replace("'", '"'))
    py = re.sub(
        r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed))
    )
    out.append(py)
    return out


def parse_json_output(text: str) -> JsonParse:
    """The JSON a model was asked for: fenced block first, then the largest balanced block."""
    if not text or not text.strip():
        return JsonParse(False, error="empty output")
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)]
    candidates.append(text.strip())
    last_error = "no JSON object or array in output"
    for cand in candidates:
        try:
            return JsonParse(True, json.loads(cand))
        except json.JSONDecodeError as e:
            last_error = f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"
        blocks = sorted(_balanced_blocks(cand), key=len, reverse=True)
        for block in blocks:
            try:
                return JsonParse(True, json.loads(block))
            except json.JSONDecodeError as e:
                last_error = f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}"
            for fixed in _repairs(block):
                try:
                    return JsonParse(True, json.loads(fixed), repaired=True)
                except json.JSONDecodeError:
                    continue
    return JsonParse(False, error=last_error)
