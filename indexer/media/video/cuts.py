"""Cut detection: hard cuts (adaptive median + k·MAD threshold, flash look-ahead) and
gradual transitions (drift from a per-shot reference), frame by frame."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from indexer.media.video.signatures import _hist_dist, _Sig
from indexer.media.video.values import BoundaryKind

log = logging.getLogger(__name__)


@dataclass
class DetectorParams:
    cut_floor: float = 0.3  # hard cuts: never below this frame-to-frame distance
    cut_k: float = 6.0  # ... nor below median + k * MAD of the recent differences
    window_s: float = 2.0  # sliding window for that median / MAD
    drift_threshold: float = 0.4  # gradual: distance from the shot's reference
    settle_s: float = 0.2  # a transition is over when the picture stops changing over this
    settle_floor: float = 0.08
    max_transition_s: float = 4.0
    dup_threshold: float = 0.15  # keyframe histogram distance below which it is a duplicate
    dup_struct: float = 6.0  # ...or same structure (mean luma-removed MAD) and
    dup_struct_hist: float = 0.5  # histogram distance below this (exposure jumps)
    min_shot_s: float = 0.3
    flash_ratio: float = 0.5  # frame t+1 back near frame t-1: a flash, not a cut
    cut_isolation: float = 0.5  # a cut's neighbouring frame differences stay below this x its
    ref_frames: int = 5  # frames averaged into a shot's drift reference


def _median(xs: list[float]) -> float:
    """Median of a short list (plain Python beats numpy below ~100 items)."""
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


@dataclass
class _RawShot:
    t_start: float
    keyframe_t: float
    sig: _Sig
    image: Image.Image | None
    kind: BoundaryKind
    strength: float
    t_end: float = 0.0
    weight: float = 0.0  # duration of the sub-shot the keyframe came from


def _frame_image(frame: Any, max_side: int) -> Image.Image:
    """Keyframe as RGB, scaled by swscale (area filter) so the longest side <= max_side."""
    w, h = int(frame.width), int(frame.height)
    scale = min(1.0, max_side / max(w, h))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if (tw, th) == (w, h):
        img = frame.to_image()
    else:
        img = frame.reformat(width=tw, height=th, format="rgb24", interpolation="AREA").to_image()
    rot = int(getattr(frame, "rotation", 0) or 0) % 360
    if rot:
        img = img.rotate(rot, expand=True)
    return img


class _Scanner:
    """Streams shots out of one decoded video. Each shot is emitted once it is final."""

    def __init__(
        self,
        fps: float,
        max_gap_s: float,
        keyframe_max_side: int,
        params: DetectorParams,
    ) -> None:
        self.p = params
        self.fps = fps
        self.max_gap_s = max_gap_s
        self.max_side = keyframe_max_side
        n_win = max(5, int(round(params.window_s * fps)))
        self.diffs: deque[float] = deque(maxlen=n_win)
        self.settle_k = max(2, int(round(params.settle_s * fps)))
        self.recent: deque[_Sig] = deque(maxlen=self.settle_k + 1)
        self.prev: _RawShot | None = None  # closed, not yet emitted (may still absorb a blip)
        self.cur: _RawShot | None = None
        self.ref_sum: np.ndarray | None = None
        self.ref_n = 0
        self.cand: tuple[float, Any, _Sig, _Sig, float] | None = None  # pending hard cut
        self.trans: tuple[float, float] | None = None  # (crossing time, drift) of a gradual
        self.trans_start_t = 0.0
        self.last_t = 0.0

    # ---- helpers
    def _reset_ref(self, sig: _Sig) -> None:
        self.ref_sum = sig.hist.copy()
        self.ref_n = 1

    def _drift(self, sig: _Sig) -> float:
        if self.ref_sum is None:
            return 0.0
        return _hist_dist(sig.hist, self.ref_sum / self.ref_n)

    def _threshold(self) -> float:
        if len(self.diffs) < 3:
            return max(self.p.cut_floor, 0.5)
        med = _median(list(self.diffs))
        mad = _median([abs(x - med) for x in self.diffs]) * 1.4826
        return max(self.p.cut_floor, med + self.p.cut_k * mad)

    def _baseline(self) -> float:
        return _median(list(self.diffs)) if self.diffs else 0.0

    def _is_dup(self, a: _Sig, b: _Sig) -> bool:
        hd = _hist_dist(a.hist, b.hist)
        if hd < self.p.dup_threshold:
            return True
        if a.luma.shape == b.luma.shape and hd < self.p.dup_struct_hist:
            struct = float(np.abs(a.luma - b.luma).mean())
            flat = float(np.abs(a.luma).mean()) < 2.0 and float(np.abs(b.luma).mean()) < 2.0
            return struct < self.p.dup_struct and not flat
        return False

    def _boundary(
        self, t: float, kf_t: float, frame: Any, sig: _Sig, kind: BoundaryKind, strength: float
    ) -> list[_RawShot]:
        self._reset_ref(sig)
        cur = self.cur
        if cur is None:
            self.cur = _RawShot(t, kf_t, sig, _frame_image(frame, self.max_side), "start", 1.0)
            return []
        if kind != "gap" and t - cur.t_start < self.p.min_shot_s:
            if self.prev is None:  # a blip at the very start: let the new keyframe stand for it
                cur.keyframe_t, cur.sig = kf_t, sig
                cur.image = _frame_image(frame, self.max_side)
                return []
            cur = self.prev  # fold the blip into the shot before it
            self.cur, self.prev = cur, None
        if kind != "gap" and self._is_dup(sig, cur.sig):
            return []
        cur.t_end = t
        cur.weight = t - cur.t_start
        out = [self.prev] if self.prev is not None else []
        self.prev = cur
        self.cur = _RawShot(t, kf_t, sig, _frame_image(frame, self.max_side), kind, strength)
        return out

    # ---- per frame
    def feed(self, t: float, frame: Any, sig: _Sig) -> list[_RawShot]:
        out: list[_RawShot] = []
        self.last_t = t
        if self.cur is None:
            out += self._boundary(t, t, frame, sig, "start", 1.0)
            self.recent.append(sig)
            return out
        prev_sig = self.recent[-1]
        d = _hist_dist(sig.hist, prev_sig.hist)

        if self.cand is not None:  # confirm or reject last frame's hard-cut candidate
            c_t, c_frame, c_sig, c_before, c_d = self.cand
            self.cand = None
            if _hist_dist(sig.hist, c_before.hist) < self.p.flash_ratio * c_d:
                self.recent.append(sig)  # a flash: neither jump is a cut
                return out
            if d < self.p.cut_isolation * c_d:  # the picture holds still after the jump
                self.trans = None
                out += self._boundary(c_t, c_t, c_frame, c_sig, "cut", c_d)
            # else: still changing fast on both sides — part of a gradual transition

        thr = self._threshold()
        last_d = self.diffs[-1] if self.diffs else 0.0
        if d > thr and last_d < self.p.cut_isolation * d:
            self.cand = (t, frame, sig, prev_sig, d)
            self.recent.append(sig)
            return out
        self.diffs.append(d)

        if self.trans is not None:
            t_c, drift_c = self.trans
            old = self.recent[0]
            settled = len(self.recent) > self.settle_k and _hist_dist(sig.hist, old.hist) < max(
                self.p.settle_floor, 1.5 * self._baseline()
            )
            if settled or t - self.trans_start_t > self.p.max_transition_s:
                self.trans = None
                out += self._boundary(t_c, t, frame, sig, "fade", drift_c)
        else:
            drift = self._drift(sig)
            if self.ref_n < self.p.ref_frames and drift < self.p.drift_threshold / 2:
                assert self.ref_sum is not None
                self.ref_sum += sig.hist
                self.ref_n += 1
            if drift > self.p.drift_threshold:
                self.trans = (t, drift)
                self.trans_start_t = t
            elif t - self.cur.t_start >= self.max_gap_s:
                out += self._boundary(t, t, frame, sig, "gap", 0.0)
        self.recent.append(sig)
        return out

    def finish(self, t_end: float) -> list[_RawShot]:
        out: list[_RawShot] = []
        if self.cand is not None:
            c_t, c_frame, c_sig, _, c_d = self.cand
            self.cand = None
            out += self._boundary(c_t, c_t, c_frame, c_sig, "cut", c_d)
        if self.prev is not None:
            out.append(self.prev)
            self.prev = None
        if self.cur is not None:
            self.cur.t_end = max(t_end, self.cur.t_start)
            self.cur.weight = self.cur.t_end - self.cur.t_start
            out.append(self.cur)
            self.cur = None
        return out
