"""OCR with RapidOCR (PP-OCR models shipped inside the wheel; nothing is downloaded).

Cheap by construction:
- the detector sees the image with its LONGER side limited to `det_side` (rapidocr's default
  is limit_type=min / 736, which upsamples every photo so its short side is 736 px: 1-2 s per
  image on 2 cores); the angle classifier is off (upright text is the common case);
- `likely_text` is a ~4 ms gate (stroke/line test on a 384 px grey image) so `mode="gated"`
  runs the detector only where there may be text. It is tuned for recall, not for savings:
  on the gate eval set it passes every image the full pass reads text in, and ~3/4 of the
  text-free photos (busy textures look like strokes), so gating saves ~20 % of detector time.

`OcrEngine.read` returns lines with pixel boxes on the image it was given. The engine is
loaded lazily, once per process, and guarded by a lock (onnxruntime sessions are not
re-entrant across threads in every build).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import cv2
import numpy as np
from PIL import Image

from indexer.domain import Box, OcrLine

log = logging.getLogger(__name__)

GATE_SIDE = 384
# stroke-strength levels tried in turn: one level misses low-contrast text (or text on fur
# and foliage, where a low level merges everything into blobs), several together find every
# text the full OCR pass finds on the gate eval set (see `glimpse bench`, section ocr_gate)
GATE_LEVELS = (30, 60, 90, 120)


def likely_text(image: Image.Image) -> bool:
    """Cheap test for text-like structure: after a top-hat/black-hat stroke filter and a
    horizontal closing, is there at least one line-shaped blob (wide, short, dense) at some
    stroke-strength level? Tuned for recall (it must not skip text the OCR would read); it
    still lets through most busy photos, which then pay for the detector."""
    g = image.convert("L")
    w, h = g.size
    s = GATE_SIDE / max(w, h)
    if s < 1:
        g = g.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    a = np.asarray(g)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))
    strokes = np.maximum(cv2.morphologyEx(a, cv2.MORPH_TOPHAT, k),
                         cv2.morphologyEx(a, cv2.MORPH_BLACKHAT, k))
    close = cv2.getStructuringElement(cv2.MORPH_RECT, (15, 3))
    for level in GATE_LEVELS:
        bw: np.ndarray = (strokes > level).astype(np.uint8) * 255
        if bw.mean() > 0.35 * 255:  # texture everywhere (gravel, grass): thin it first
            bw = cv2.morphologyEx(bw, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        lines = cv2.morphologyEx(bw, cv2.MORPH_CLOSE, close)
        _, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        for _x, _y, bw_, bh, area in stats[1:]:
            if 5 <= bh <= 80 and bw_ >= 2.5 * bh and bw_ >= 20 and area >= 0.35 * bw_ * bh:
                return True
    return False


class OcrEngine:
    def __init__(self, *, threads: int = 1, min_score: float = 0.5, det_side: int = 640) -> None:
        self.threads = threads
        self.min_score = min_score
        self.det_side = det_side
        self._engine: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._engine is not None:
                return
            from rapidocr import RapidOCR

            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            params = {
                "Global.log_level": "error",
                "Global.use_cls": False,
                "Det.limit_type": "max",
                "Det.limit_side_len": self.det_side,
                "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
            try:
                self._engine = RapidOCR(params=params)
            except Exception:  # older 3.x releases lack some keys: fall back to defaults
                log.warning("RapidOCR rejected params; using its (slow) defaults", exc_info=True)
                self._engine = RapidOCR()
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)

    def read(self, image: Image.Image) -> list[OcrLine]:
        self.load()
        arr = np.asarray(image.convert("RGB"))
        with self._lock:
            out = self._engine(arr)
        if out is None or out.txts is None:
            return []
        lines: list[OcrLine] = []
        for pts, text, score in zip(out.boxes, out.txts, out.scores, strict=False):
            text = str(text).strip()
            # lone characters are mostly texture read as text; keep them only when sure
            if float(score) < self.min_score or not text or (len(text) < 2 and score < 0.9):
                continue
            p = np.asarray(pts, dtype=np.float32)
            box = Box(float(p[:, 0].min()), float(p[:, 1].min()),
                      float(p[:, 0].max()), float(p[:, 1].max()))
            lines.append(OcrLine(text=text, score=float(score), box=box))
        return lines
