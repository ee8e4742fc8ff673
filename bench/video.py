"""Video benchmark: keyframe speed (× real time) and cut-detection precision / recall / F1.

Everything is measured on videos generated here with PyAV (h264, yuv420p) whose cuts,
dissolves and fades are known exactly, so the numbers need no downloads.

    python -m bench.video            # prints JSON
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import numpy as np

from indexer.media.video import FAST_DECODE_MIN_PIXELS, extract_keyframes, probe_video

log = logging.getLogger(__name__)

Content = Literal["solid", "noise", "shapes", "gradient"]
Transition = Literal["cut", "dissolve", "fade_black"]


@dataclass
class Segment:
    """One synthetic shot. `transition` says how it begins (ignored for the first)."""

    content: Content
    duration_s: float
    color: tuple[int, int, int]
    seed: int = 0
    transition: Transition = "cut"
    transition_s: float = 0.0
    static: bool = False  # no motion at all
    grain: float = 0.0  # per-frame sensor-like noise (std, 0-255 levels): raises the bitrate


@dataclass
class TruthBoundary:
    t: float  # nominal boundary (first frame of the new shot for hard cuts)
    t0: float  # transition span
    t1: float
    kind: Transition


@dataclass
class _Renderer:
    seg: Segment
    width: int
    height: int
    base: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seg.seed)
        w, h = self.width, self.height
        col = np.array(self.seg.color, dtype=np.float32)
        if self.seg.content == "solid":
            base = np.broadcast_to(col, (h, w, 3)).copy()
        elif self.seg.content == "gradient":
            ramp = np.linspace(0.35, 1.0, w, dtype=np.float32)[None, :, None]
            base = np.broadcast_to(col * ramp, (h, w, 3)).copy()
        else:  # noise / shapes: a blocky texture around the segment colour
            bs = max(2, w // 80)
            tex = rng.normal(0, 22, (h // bs + 2, w // bs + 2, 3)).astype(np.float32)
            tex = tex.repeat(bs, 0).repeat(bs, 1)[: h + bs, : w + bs]
            base = np.broadcast_to(col, tex.shape) + tex
        self.base = np.clip(base, 0, 255).astype(np.uint8)
        self.shape_col = (255 - col).astype(np.uint8)
        self.grain: list[np.ndarray] = []
        if self.seg.grain > 0:  # a bank of 5 noise fields (more than x264's reference frames)
            self.grain = [
                rng.normal(0, self.seg.grain, (self.height, self.width, 1)).astype(np.int16)
                for _ in range(5)
            ]

    def frame(self, k: int) -> np.ndarray:
        w, h = self.width, self.height
        if self.seg.content in ("noise", "shapes") and not self.seg.static:
            dx = k % max(1, self.base.shape[1] - w)
            img = self.base[:h, dx : dx + w].copy() if self.base.shape[1] > w else self.base[
                :h, :w].copy()
        else:
            img = self.base[:h, :w].copy()
        if self.seg.content == "shapes" and not self.seg.static:
            sz = max(4, h // 6)
            x = (k * max(1, w // 100)) % max(1, w - sz)
            y = int((h - sz) * (0.5 + 0.4 * np.sin(k / 15.0)))
            img[y : y + sz, x : x + sz] = self.shape_col
        if self.grain:
            img = np.clip(img + self.grain[k % len(self.grain)], 0, 255).astype(np.uint8)
        return img


def render_frames(
    segments: list[Segment], width: int, height: int, fps: int
) -> tuple[list[TruthBoundary], int, object]:
    """Frame generator + ground truth. Boundaries are frame-aligned."""
    starts = []
    t = 0
    for seg in segments:
        starts.append(t)
        t += max(1, round(seg.duration_s * fps))
    n_total = t
    truth = []
    for i, seg in enumerate(segments[1:], start=1):
        b = starts[i]
        half = round(seg.transition_s * fps / 2) if seg.transition != "cut" else 0
        truth.append(
            TruthBoundary(b / fps, (b - half) / fps, (b + half) / fps, seg.transition)
        )
    renderers = [_Renderer(s, width, height) for s in segments]

    def gen():  # type: ignore[no-untyped-def]
        for n in range(n_total):
            j = max(i for i, s in enumerate(starts) if s <= n)
            img = renderers[j].frame(n - starts[j]).astype(np.float32)
            # transitions straddle the boundary: [b - half, b + half)
            for i in (j, j + 1):
                if i == 0 or i >= len(segments):
                    continue
                seg = segments[i]
                if seg.transition == "cut":
                    continue
                half = round(seg.transition_s * fps / 2)
                b = starts[i]
                if not (b - half <= n < b + half) or half == 0:
                    continue
                a = (n - (b - half) + 0.5) / (2 * half)  # 0..1 across the transition
                old = renderers[i - 1].frame(n - starts[i - 1]).astype(np.float32)
                new = renderers[i].frame(n - starts[i]).astype(np.float32)
                if seg.transition == "dissolve":
                    img = (1 - a) * old + a * new
                else:
                    img = old * max(0.0, 1 - 2 * a) if a < 0.5 else new * min(1.0, 2 * a - 1)
            yield np.clip(img, 0, 255).astype(np.uint8)

    return truth, n_total, gen()


def make_synthetic_video(
    path: str | os.PathLike[str],
    segments: list[Segment],
    *,
    width: int = 160,
    height: int = 96,
    fps: int = 25,
    preset: str = "veryfast",
    faststart: bool = False,
) -> list[TruthBoundary]:
    """Encode `segments` to an h264/yuv420p MP4 at `path`; return the true boundaries."""
    truth, _, frames = render_frames(segments, width, height, fps)
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(os.fspath(path), "w", format="mp4", options=opts) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": preset, "crf": "20"}
        for img in frames:  # type: ignore[attr-defined]
            for pkt in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return truth


_PALETTE = [
    (220, 40, 40), (40, 200, 60), (40, 70, 220), (230, 200, 40), (200, 60, 200),
    (40, 200, 210), (240, 140, 30), (120, 120, 120), (250, 250, 250), (90, 40, 20),
    (20, 90, 60), (150, 200, 255),
]


def random_segments(seed: int, n: int, *, with_gradual: bool = True) -> list[Segment]:
    """A random edit: distinct-looking neighbours, mixed content, cuts / dissolves / fades."""
    rng = np.random.default_rng(seed)
    segs: list[Segment] = []
    last = -1
    for i in range(n):
        c = int(rng.integers(len(_PALETTE)))
        while c == last:
            c = int(rng.integers(len(_PALETTE)))
        last = c
        content: Content = ("solid", "noise", "shapes", "gradient")[int(rng.integers(4))]  # type: ignore[assignment]
        trans: Transition = "cut"
        ts = 0.0
        if i > 0 and with_gradual and rng.random() < 0.35:
            trans = "dissolve" if rng.random() < 0.6 else "fade_black"
            ts = float(rng.choice([0.6, 1.0, 1.4]))
        segs.append(Segment(content, float(rng.uniform(1.5, 3.5)), _PALETTE[c],
                            seed=int(rng.integers(1 << 30)), transition=trans, transition_s=ts))
    return segs


def score_boundaries(
    detected: list[float], truth: list[TruthBoundary], fps: float
) -> tuple[int, int, int]:
    """(true positives, detected, truth). Hard cut: ±max(1 frame, 0.1 s); gradual: in span."""
    tol = max(1.0 / fps, 0.1) + 1e-6
    used = [False] * len(truth)
    tp = 0
    for d in sorted(detected):
        for i, tb in enumerate(truth):
            if used[i]:
                continue
            lo, hi = (tb.t - tol, tb.t + tol) if tb.kind == "cut" else (tb.t0 - tol, tb.t1 + tol)
            if lo <= d <= hi:
                used[i] = True
                tp += 1
                break
    return tp, len(detected), len(truth)


def _speed(
    tmp: Path, width: int, height: int, seconds: float, grain: float = 0.0,
    preset: str = "medium",
) -> dict[str, object]:
    segs = [Segment(("shapes", "noise")[i % 2], 3.0, _PALETTE[i % len(_PALETTE)], seed=i,
                    grain=grain) for i in range(int(seconds // 3))]
    path = tmp / f"speed_{height}_{grain:g}.mp4"
    make_synthetic_video(path, segs, width=width, height=height, fps=30, preset=preset)
    info = probe_video(path)
    out: dict[str, object] = {
        "duration_s": round(info.duration_s, 2),
        "fps": info.fps,
        "mbps": round(path.stat().st_size * 8 / info.duration_s / 1e6, 2),
        "true_shots": len(segs),
        "default_mode": "fast_decode" if width * height >= FAST_DECODE_MIN_PIXELS or info.fps > 40
        else "full_decode",
    }
    for fast in (False, True):
        wall = cpu = float("inf")
        n_shots = 0
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            res = extract_keyframes(path, max_gap_s=10.0, timeout_s=None, fast_decode=fast)
            wall = min(wall, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
            n_shots = len(res.shots)
        out["fast_decode" if fast else "full_decode"] = {
            "wall_s": round(wall, 3),
            "x_realtime": round(info.duration_s / wall, 1),
            "cpu_s": round(cpu, 3),
            "x_realtime_per_cpu_s": round(info.duration_s / cpu, 1),
            "shots": n_shots,
        }
    return out


def _cut_scores(tmp: Path, n_videos: int, seed: int, fast: bool) -> dict[str, object]:
    tp = n_det = n_true = 0
    by_kind: dict[str, list[int]] = {"cut": [0, 0], "dissolve": [0, 0], "fade_black": [0, 0]}
    errs: list[float] = []
    for v in range(n_videos):
        path = tmp / f"cuts_{v}.mp4"
        fps = 25
        segs = random_segments(seed + v, 14)
        if not path.exists():
            make_synthetic_video(path, segs, width=320, height=180, fps=fps)
        truth, _, _ = render_frames(segs, 320, 180, fps)
        res = extract_keyframes(path, max_gap_s=1e9, max_frames=1000, timeout_s=None,
                                fast_decode=fast)
        detected = [s.t_start for s in res.shots if s.boundary in ("cut", "fade")]
        a, b, c = score_boundaries(detected, truth, fps)
        tp, n_det, n_true = tp + a, n_det + b, n_true + c
        for tb in truth:
            hit, _, _ = score_boundaries(detected, [tb], fps)
            by_kind[tb.kind][0] += hit
            by_kind[tb.kind][1] += 1
            if tb.kind == "cut" and detected:
                errs.append(min(abs(d - tb.t) for d in detected) * fps)
    p = tp / n_det if n_det else 0.0
    r = tp / n_true if n_true else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    exact = sum(e < 0.5 for e in errs)
    return {
        "true_boundaries": n_true,
        "detected": n_det,
        "true_positives": tp,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
        "recall_by_kind": {k: f"{h}/{n}" for k, (h, n) in by_kind.items()},
        "hard_cuts_on_exact_frame": f"{exact}/{len(errs)}",
    }


def bench_video(n_videos: int = 8, seed: int = 1000) -> dict[str, object]:
    """Speed at 360p / 720p and cut-detection P/R/F1 on generated edits."""
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-video-") as d:
        tmp = Path(d)
        speed = {
            "360p": _speed(tmp, 640, 360, 24.0),
            "720p": _speed(tmp, 1280, 720, 24.0),
            # film-grain noise pushes the bitrate to camera-like levels (decoding cost grows)
            "720p_grain": _speed(tmp, 1280, 720, 9.0, grain=3.0, preset="veryfast"),
        }
        cuts = {
            "videos": n_videos,
            "tolerance": "hard cut: max(1 frame, 0.1 s); gradual: inside the transition span",
            "full_decode": _cut_scores(tmp, n_videos, seed, fast=False),
            "fast_decode": _cut_scores(tmp, n_videos, seed, fast=True),
        }
        from bench.scenedetect_compare import compare_shot_detectors

        # the same videos _cut_scores generated, and the same scorer
        truths = [render_frames(random_segments(seed + v, 14), 320, 180, 25)[0]
                  for v in range(n_videos)]
        cuts["vs_pyscenedetect"] = compare_shot_detectors(
            [tmp / f"cuts_{v}.mp4" for v in range(n_videos)], truths, 25, score_boundaries)
    return {
        "speed": speed,
        "cuts": cuts,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(bench_video(), indent=2))
