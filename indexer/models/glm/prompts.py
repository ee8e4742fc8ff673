"""Prompts shared by the glm (in-process) and openai (served) GLM backends."""

from __future__ import annotations

from indexer.errors import InvalidRequest

EMBED_PROMPT_VERSION = "e5v1"
IMAGE_EMBED_PROMPT = "Summarize the above image in one word:"
TEXT_EMBED_PROMPT = "Summarize the above sentence in one word:"
DESCRIBE_PROMPT = "Describe this image in one or two sentences."
SCORE_PROMPT = "Does this image match: {query}? Answer yes or no."
VIDEO_SYSTEM_HINT = (
    "The video is given as keyframes; each frame is followed by its time in seconds."
)

EXTRACT_PROMPTS: dict[str, str] = {
    "tables": (
        "Extract every table in this image. Output only JSON: "
        '{"tables": [{"title": str, "columns": [str], "rows": [[str]]}]}'
    ),
    "kv": (
        "Extract every key-value pair (form fields, labels and their values). Output only JSON: "
        '{"pairs": [{"key": str, "value": str}]}'
    ),
    "chart": (
        "Read this chart. Output only JSON: "
        '{"chart_type": str, "title": str, "x_label": str, "y_label": str, '
        '"series": [{"name": str, "points": [[x, y]]}]}'
    ),
    "text": (
        "Transcribe all text in reading order. Output only JSON: "
        '{"text": str, "blocks": [{"text": str}]}'
    ),
}
_KIND_ALIASES = {"table": "tables", "key_value": "kv", "kv_pairs": "kv", "ocr": "text"}


def extract_kind(kind: str) -> str:
    key = _KIND_ALIASES.get(kind, kind)
    if key not in EXTRACT_PROMPTS:
        raise InvalidRequest(
            f"unknown extraction kind {kind!r}; use one of {sorted(EXTRACT_PROMPTS)}"
        )
    return key
