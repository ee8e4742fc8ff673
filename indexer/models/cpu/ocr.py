"""OCR with RapidOCR (PP-OCR models shipped inside the wheel; nothing is downloaded).

`OcrEngine.read` returns lines with pixel boxes on the image it was given. The engine is
loaded lazily, once per process, and guarded by a lock (onnxruntime sessions are not
re-entrant across threads in every build).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from PIL import Image

from indexer.domain import Box, OcrLine

log = logging.getLogger(__name__)


class OcrEngine:
    def __init__(self, *, threads: int = 1, min_score: float = 0.5) -> None:
        self.threads = threads
        self.min_score = min_score
        self._engine: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._engine is not None:
            return
        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        params = {
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        try:
            self._engine = RapidOCR(params=params)
        except Exception:  # older 3.x releases lack some keys: fall back to defaults
            log.debug("RapidOCR rejected params; using defaults", exc_info=True)
            self._engine = RapidOCR()

    def read(self, image: Image.Image) -> list[OcrLine]:
        self.load()
        arr = np.asarray(image.convert("RGB"))
        with self._lock:
            out = self._engine(arr)
        if out is None or out.txts is None:
            return []
        lines: list[OcrLine] = []
        for pts, text, score in zip(out.boxes, out.txts, out.scores, strict=False):
            if float(score) < self.min_score or not str(text).strip():
                continue
            p = np.asarray(pts, dtype=np.float32)
            box = Box(float(p[:, 0].min()), float(p[:, 1].min()),
                      float(p[:, 0].max()), float(p[:, 1].max()))
            lines.append(OcrLine(text=str(text).strip(), score=float(score), box=box))
        return lines
