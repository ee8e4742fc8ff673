"""The `glm` backend: GLM-4.5V / GLM-4.1V checkpoints through transformers.

`GlmModel` is imported lazily so the pure helpers (box and JSON parsers, reasoning split) can be
used by the openai backend without importing torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from indexer.models.glm.boxes import BoxParse, NormBox, parse_boxes, strip_box_tokens
from indexer.models.glm.jsonparse import JsonParse, parse_json_output
from indexer.models.glm.text import split_thinking, steps_from_thinking

if TYPE_CHECKING:
    from indexer.models.glm.model import GlmModel

__all__ = [
    "BoxParse",
    "GlmModel",
    "JsonParse",
    "NormBox",
    "parse_boxes",
    "parse_json_output",
    "split_thinking",
    "steps_from_thinking",
    "strip_box_tokens",
]


def __getattr__(name: str) -> Any:
    if name == "GlmModel":
        from indexer.models.glm.model import GlmModel

        return GlmModel
    raise AttributeError(name)
