"""What decoding a media yields: its views, ready for the model. A module of its own so the
per-kind decoders (decode_video, decode_document) and the dispatcher (decode) share the
types without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from indexer.domain import ViewInput


@dataclass
class DecodedView:
    view: ViewInput
    idx: int
    store_image: bool  # frames and pages keep their own image blob; an image view is the media
    extra: dict[str, Any] = field(default_factory=dict)  # merged into description.extra


@dataclass
class Decoded:
    views: list[DecodedView]
    warnings: list[str] = field(default_factory=list)
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    # after encoding: extra (view, encoding) pairs derived from the encoded views — a
    # video's summary view is built from its shots' descriptions
    post_encode: Callable[[list[Any]], list[tuple[DecodedView, Any]]] | None = None
