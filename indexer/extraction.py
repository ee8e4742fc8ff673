"""Structured extraction of a view (tables, key-values, chart data, text), stored so that a
second request costs nothing. The cpu backend uses the document pipeline in
`indexer.documents` (OCR + layout + tables/kv/chart readers); glm/openai backends answer
with JSON from the model, validated against the same shapes."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from indexer.documents.extract import KINDS, extract, validate_extraction
from indexer.domain import ViewInput
from indexer.errors import InvalidRequest

if TYPE_CHECKING:
    from indexer.context import Glimpse

log = logging.getLogger(__name__)
_OCR_LOCK = threading.Lock()
_OCR: Any = None


def _ocr() -> Any:
    global _OCR
    with _OCR_LOCK:
        if _OCR is None:
            from indexer.models.cpu.ocr import OcrEngine

            _OCR = OcrEngine()
        return _OCR


class ExtractionService:
    def __init__(self, core: Glimpse) -> None:
        self.core = core

    def extract(self, media_id: str, kind: str, view_idx: int = 0) -> dict[str, Any]:
        if kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}")
        m = self.core.catalog.get_media(media_id)
        if m.status != "ready":
            raise InvalidRequest(f"media {media_id} is {m.status}, not ready for extraction")
        view = self.core.catalog.get_view(f"{media_id}:{view_idx}")
        generative = self.core.model.generative
        model_id = self.core.model.model_id if generative else "cpu-documents-v1"
        cached = self.core.catalog.get_extraction(view.id, kind, model_id)
        if cached is not None:
            return {**cached, "cached": True}
        t0 = time.perf_counter()
        img = self.core.view_image(view)
        text_layer = view.description.extra.get("text_layer")
        vi = ViewInput(view.id, img, view.kind, view.t_start, view.t_end,  # type: ignore[arg-type]
                       view.page, text_layer if isinstance(text_layer, str) else None)
        if not generative:
            result = extract(vi, kind, _ocr())
        else:
            result = self.core.model.extract(vi, kind)
            problems = validate_extraction(kind, result)
            if problems:
                result = {**result, "warnings": list(result.get("warnings", [])) + [
                    f"model output failed validation: {p}" for p in problems[:5]]}
        result = {**result, "kind": kind, "view_id": view.id, "page": view.page,
                  "elapsed_ms": round((time.perf_counter() - t0) * 1000, 1)}
        self.core.catalog.put_extraction(view.id, kind, model_id, result)
        return {**result, "cached": False}
