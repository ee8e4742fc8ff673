"""Video probing, keyframe extraction, shot summaries and moments — pure domain code.

The decoder is PyAV. Shot detection runs on tiny frames built straight from the decoded
YUV planes (no full-size colour conversion per frame): a soft-binned HSV histogram per
frame, compared frame to frame for hard cuts (adaptive threshold: median + k·MAD of the
recent frame differences, with a one-frame look-ahead that ignores flashes) and against a
per-shot reference for gradual transitions (fades, dissolves: drift since the last cut
crosses a threshold, the new keyframe is taken once the picture settles). A maximum gap
splits long static shots into sub-shots; a new keyframe too similar to the previous kept
one is merged into it; a shot shorter than ``min_shot_s`` is folded into its neighbour.

``extract_keyframes`` decodes in-process; ``extract_keyframes_bounded`` runs the same code
in a child process with a hard timeout, so one pathological file cannot hang a worker.
"""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from PIL import Image

from indexer.domain import Description, OcrLine, Tag
from indexer.errors import CorruptMedia, GlimpseError, MediaTooLarge, UnsupportedMedia

log = logging.getLogger(__name__)

BoundaryKind = Literal["start", "cut", "fade", "gap", "sample"]

# 8K UHD, either orientation.
DEFAULT_MAX_DIMS: tuple[int, int] = (7680, 4320)
# `fast_decode=None` skips non-reference frames from this frame area up (or above 40 fps).
FAST_DECODE_MIN_PIXELS = 1280 * 720


class DecodeTimeout(CorruptMedia):
    """Decoding ran past its time limit and nothing usable came back."""

    code = "decode_timeout"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    has_video: bool = True
    n_frames: int | None = None
    container: str = ""


@dataclass
class Shot:
    """One shot (or sub-shot of a long static shot) and the keyframe that stands for it."""

    index: int
    t_start: float
    t_end: float
    keyframe_t: float
    image: Image.Image
    boundary: BoundaryKind = "cut"  # how this shot began
    boundary_score: float = 1.0  # strength of that boundary (0 for gap splits / samples)

    @property
    def duration(self) -> float:
        return max(0.0, self.t_end - self.t_start)


@dataclass
class KeyframeResult:
    shots: list[Shot]
    warnings: list[str]
    info: VideoInfo
    partial: bool = False  # stopped early (time limit, decode error); shots cover a prefix
    frame_exact: bool = True  # False when non-reference frames were skipped (fast_decode)


@dataclass
class Moment:
    t_start: float
    t_end: float
    score: float
    shot_indices: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- probing

_CONTAINER_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (4, b"skip"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


def _looks_like_container(path: Path) -> bool:
    """Does the file start like a video container? Tells 'truncated' from 'not a video'."""
    try:
        with path.open("rb") as fh:
            head = fh.read(400)
    except OSError:
        return False
    if any(head[off : off + len(magic)] == magic for off, magic in _CONTAINER_MAGIC):
        return True
    return len(head) > 188 and head[0] == 0x47 and head[188] == 0x47  # MPEG-TS


def _open(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise CorruptMedia(f"cannot read video file: {exc}") from exc
    if size == 0:
        raise CorruptMedia("video file is empty (0 bytes)", detail={"size": 0})
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _looks_like_container(p):
            raise CorruptMedia(
                f"video container is damaged or truncated and cannot be opened: {exc}",
                detail={"size": size},
            ) from exc
        raise UnsupportedMedia(
            "file is not a recognisable video (unknown or non-media format)",
            detail={"size": size},
        ) from exc


def _video_stream(container: Any) -> Any:
    streams = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        what = "audio-only file" if "audio" in kinds else "no video stream"
        raise UnsupportedMedia(
            f"not a video: {what} (streams: {', '.join(kinds) or 'none'})",
            detail={"streams": kinds},
        )
    return streams[0]


def _stream_info(container: Any, stream: Any, max_dims: tuple[int, int]) -> VideoInfo:
    ctx = stream.codec_context
    codec = getattr(ctx, "name", None) or getattr(stream.codec, "name", "") or "unknown"
    if getattr(stream.codec, "is_decoder", True) is False:
        raise UnsupportedMedia(f"no decoder for video codec {codec!r}", detail={"codec": codec})
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise CorruptMedia("video stream has no frame size", detail={"codec": codec})
    big, small = max(max_dims), min(max_dims)
    if max(width, height) > big or min(width, height) > small:
        raise MediaTooLarge(
            f"video resolution {width}x{height} exceeds the limit of {big}x{small}",
            detail={"width": width, "height": height, "max": [big, small]},
        )
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if not (0.0 < fps < 1000.0):
        fps = 25.0
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    if duration <= 0 and container.duration:
        duration = container.duration / 1_000_000
    n_frames = int(stream.frames) if stream.frames else None
    if duration <= 0 and n_frames:
        duration = n_frames / fps
    return VideoInfo(
        duration_s=max(0.0, duration),
        fps=fps,
        width=width,
        height=height,
        codec=codec,
        has_video=True,
        n_frames=n_frames,
        container=str(getattr(container.format, "name", "")),
    )


def probe_video(
    path: str | os.PathLike[str], *, max_dims: tuple[int, int] = DEFAULT_MAX_DIMS
) -> VideoInfo:
    """Read the container header: duration, fps, size, codec. Raises typed errors."""
    container = _open(path)
    try:
        stream = _video_stream(container)
        return _stream_info(container, stream, max_dims)
    finally:
        container.close()


# --------------------------------------------------------------------------- frame signatures

_H_BINS, _S_BINS, _V_BINS = 16, 8, 8
_FAST_FORMATS = {"yuv420p", "yuvj420p"}
_SPLITS = np.array([0, _H_BINS, _H_BINS + _S_BINS])


def _soft_bins(x: np.ndarray, bins: int, circular: bool) -> tuple[np.ndarray, ...]:
    """Linear-interpolated binning of x in [0, 1): (lo, hi, w_lo, w_hi) per value."""
    pos = x * bins - 0.5
    lo = np.floor(pos)
    frac = pos - lo
    lo_i = lo.astype(np.int64)
    hi_i = lo_i + 1
    if circular:
        lo_i %= bins
        hi_i %= bins
    else:
        lo_i = np.clip(lo_i, 0, bins - 1)
        hi_i = np.clip(hi_i, 0, bins - 1)
    return lo_i, hi_i, 1.0 - frac, frac


def _hsv(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, ...]:
    """BT.601 limited-range YUV (any float/uint arrays) -> hue, saturation, value in [0, 1]."""
    yf = (y.astype(np.float32) - 16.0) * (1.0 / 219.0)
    cb = (u.astype(np.float32) - 128.0) * (1.0 / 224.0)
    cr = (v.astype(np.float32) - 128.0) * (1.0 / 224.0)
    r = np.clip(yf + 1.402 * cr, 0.0, 1.0)
    g = np.clip(yf - 0.344136 * cb - 0.714136 * cr, 0.0, 1.0)
    b = np.clip(yf + 1.772 * cb, 0.0, 1.0)
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    delta = mx - mn
    safe = np.where(delta > 1e-6, delta, 1.0)
    hue = np.where(
        mx == r,
        ((g - b) / safe) % 6.0,
        np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    hue = (hue / 6.0) % 1.0
    sat = np.where(mx > 1e-6, delta / np.maximum(mx, 1e-6), 0.0)
    sat = sat * np.minimum(1.0, mx * 4.0)  # dark pixels carry no reliable colour
    return hue, np.minimum(sat, 0.9999), np.minimum(mx, 0.9999)


_LUT: tuple[np.ndarray, np.ndarray] | None = None


def _lut() -> tuple[np.ndarray, np.ndarray]:
    """Soft HSV-histogram contributions for every (Y>>2, U>>3, V>>3): 6 (bin, weight) each.

    Built once (65,536 entries); per frame the histogram is then one gather + one bincount.
    """
    global _LUT
    if _LUT is None:
        k = np.arange(1 << 16)
        y = (k >> 10) * 4 + 1.5
        u = ((k >> 5) & 31) * 8 + 3.5
        v = (k & 31) * 8 + 3.5
        hue, sat, val = _hsv(y, u, v)
        h_lo, h_hi, h_wl, h_wh = _soft_bins(hue, _H_BINS, circular=True)
        s_lo, s_hi, s_wl, s_wh = _soft_bins(sat, _S_BINS, circular=False)
        v_lo, v_hi, v_wl, v_wh = _soft_bins(val, _V_BINS, circular=False)
        so, vo = _H_BINS, _H_BINS + _S_BINS
        bins = np.stack([h_lo, h_hi, s_lo + so, s_hi + so, v_lo + vo, v_hi + vo], 1)
        weights = np.stack([h_wl * sat, h_wh * sat, s_wl, s_wh, v_wl, v_wh], 1)
        _LUT = (bins.astype(np.intp), weights.astype(np.float64))
    return _LUT


class _Sampler:
    """Tiny-frame sampling straight from YUV planes (strided views, no colour conversion)."""

    def __init__(self, width: int, height: int, target_w: int = 64) -> None:
        self.step = max(2, 2 * round(width / (2 * target_w)))
        self.width, self.height = width, height

    @staticmethod
    def _plane(frame: Any, i: int) -> np.ndarray:
        p = frame.planes[i]
        arr = np.frombuffer(p, dtype=np.uint8)
        return arr[: p.line_size * p.height].reshape(p.height, p.line_size)[:, : p.width]

    def yuv(self, frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if frame.format.name not in _FAST_FORMATS or (frame.width, frame.height) != (
            self.width,
            self.height,
        ):
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        s, c = self.step, self.step // 2
        # copy whole rows first (sequential reads), then pick columns from cache: about 5x
        # faster than gathering single pixels spread over a large frame
        y = np.ascontiguousarray(self._plane(frame, 0)[::s])[:, ::s]
        u = np.ascontiguousarray(self._plane(frame, 1)[::c])[:, ::c]
        v = np.ascontiguousarray(self._plane(frame, 2)[::c])[:, ::c]
        h = min(y.shape[0], u.shape[0], v.shape[0])
        w = min(y.shape[1], u.shape[1], v.shape[1])
        return y[:h, :w], u[:h, :w], v[:h, :w]


@dataclass
class _Sig:
    hist: np.ndarray  # [H | S | V] soft histograms
    y: np.ndarray  # tiny luma, for near-duplicate checks

    @property
    def luma(self) -> np.ndarray:
        f = self.y.astype(np.float32)
        return f - float(f.mean())


def _signature(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> _Sig:
    bins, weights = _lut()
    key = (y >> 2).astype(np.intp)
    key <<= 10
    key |= (u >> 3).astype(np.intp) << 5
    key |= v >> 3
    key = key.ravel()
    hist = np.bincount(
        np.take(bins, key, axis=0).ravel(),
        np.take(weights, key, axis=0).ravel(),
        minlength=_H_BINS + 2 * _S_BINS,
    )
    return _Sig(hist=_blur(hist / key.size), y=y.copy())


_BLUR_PASSES = 1


def _blur(hist: np.ndarray) -> np.ndarray:
    """[1, 2, 1]/4 smoothing per channel (circular for hue): a colour drifting by a fraction
    of a bin — a dissolve between flat colours — moves little mass, a real change still does."""
    for _ in range(_BLUR_PASSES):
        h = hist[:_H_BINS]
        hb = 0.5 * h + 0.25 * (np.roll(h, 1) + np.roll(h, -1))
        parts = [hb]
        for a, b in ((_H_BINS, _H_BINS + _S_BINS), (_H_BINS + _S_BINS, len(hist))):
            x = hist[a:b]
            xp = np.concatenate(([x[0]], x, [x[-1]]))
            parts.append(0.5 * x + 0.25 * (xp[:-2] + xp[2:]))
        hist = np.concatenate(parts)
    return hist


def _signature_exact(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> _Sig:
    """Reference (no look-up table) version of `_signature`, used by tests."""
    hue, sat, val = (a.ravel() for a in _hsv(y, u, v))
    hist = np.zeros(_H_BINS + _S_BINS + _V_BINS)
    for x, n, off, w, circ in (
        (hue, _H_BINS, 0, sat, True),
        (sat, _S_BINS, _H_BINS, None, False),
        (val, _V_BINS, _H_BINS + _S_BINS, None, False),
    ):
        lo, hi, wl, wh = _soft_bins(x, n, circ)
        ww = np.ones_like(x) if w is None else w
        hist[off : off + n] += np.bincount(lo, ww * wl, minlength=n)
        hist[off : off + n] += np.bincount(hi, ww * wh, minlength=n)
    return _Sig(hist=_blur(hist / hue.size), y=y.copy())


def _hist_dist(a: np.ndarray, b: np.ndarray) -> float:
    """Max over H, S, V of the total-variation distance: 0 same, 1 disjoint."""
    return 0.5 * float(np.add.reduceat(np.abs(a - b), _SPLITS).max())


# --------------------------------------------------------------------------- detection


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


# --------------------------------------------------------------------------- scanning


@dataclass
class _ScanEnd:
    info: VideoInfo
    warnings: list[str]
    partial: bool
    frame_exact: bool = True


def _fmt_duration(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f}-hour"
    if s >= 60:
        return f"{s / 60:.1f}-minute"
    return f"{s:.1f}-second"


def _scan(
    path: str | os.PathLike[str],
    *,
    max_frames: int,
    max_gap_s: float,
    deadline: float | None,
    keyframe_max_side: int,
    max_dims: tuple[int, int],
    max_full_decode_s: float,
    fast_decode: bool | None,
    params: DetectorParams,
) -> Iterator[_RawShot | _ScanEnd]:
    """Yield raw shots as they become final, then one _ScanEnd."""
    container = _open(path)
    try:
        stream = _video_stream(container)
        info = _stream_info(container, stream, max_dims)
        if info.duration_s > max_full_decode_s and max_frames > 0:
            yield from _scan_sampled(container, stream, info, max_frames, keyframe_max_side,
                                     deadline)
            return
        stream.thread_type = "AUTO"
        if fast_decode is None:
            fast_decode = info.width * info.height >= FAST_DECODE_MIN_PIXELS or info.fps > 40
        if fast_decode:
            stream.codec_context.skip_frame = "NONREF"
        sampler = _Sampler(info.width, info.height)
        scanner = _Scanner(info.fps, max_gap_s, keyframe_max_side, params)
        warnings: list[str] = []
        partial = False
        t0: float | None = None
        last_t = 0.0
        n = 0
        bad_packets = 0
        last_err: Exception | None = None

        def frames() -> Iterator[Any]:
            nonlocal bad_packets, last_err
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except (av.error.FFmpegError, ValueError) as exc:
                    bad_packets += 1  # skip a damaged packet; give up after many
                    last_err = exc
                    if bad_packets > 100:
                        raise
                    continue
                yield from decoded

        try:
            for frame in frames():
                ft = frame.time
                if ft is None:
                    ft = n / info.fps
                if t0 is None:
                    t0 = ft
                t = max(0.0, ft - t0)
                if t < last_t - 1e-6 and n > 0:
                    continue  # out-of-order timestamp: skip rather than go back in time
                last_t = t
                n += 1
                if (frame.width, frame.height) != (sampler.width, sampler.height):
                    sampler = _Sampler(frame.width, frame.height)
                yield from scanner.feed(t, frame, _signature(*sampler.yuv(frame)))
                if deadline is not None and time.monotonic() > deadline:
                    partial = True
                    warnings.append(
                        f"decode time limit reached: indexed the first {t:.1f} s of a "
                        f"{_fmt_duration(info.duration_s)} file"
                    )
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            if n == 0:
                raise CorruptMedia(f"video could not be decoded: {exc}") from exc
            partial = True
            warnings.append(f"decoding stopped at {last_t:.1f} s: {exc}")
        if n == 0:
            why = f": {last_err}" if last_err else ""
            raise CorruptMedia(f"video stream contains no decodable frames{why}")
        if bad_packets:
            warnings.append(f"skipped {bad_packets} damaged packet(s) while decoding")
        end_t = last_t + 1.0 / info.fps
        if not partial and info.duration_s > 0 and end_t < 0.9 * info.duration_s - 0.5:
            warnings.append(
                f"file looks truncated: decoded {end_t:.1f} s of the {info.duration_s:.1f} s "
                "the header announces"
            )
            partial = True
        yield from scanner.finish(end_t)
        yield _ScanEnd(info, warnings, partial, frame_exact=not fast_decode)
    finally:
        container.close()


def _scan_sampled(
    container: Any,
    stream: Any,
    info: VideoInfo,
    max_frames: int,
    keyframe_max_side: int,
    deadline: float | None,
) -> Iterator[_RawShot | _ScanEnd]:
    """Too long to decode fully: one keyframe at the middle of each of max_frames slices."""
    n = max(1, max_frames)
    span = info.duration_s / n
    start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    got = 0
    partial = False
    warnings: list[str] = []
    sampler = _Sampler(info.width, info.height)
    for i in range(n):
        if deadline is not None and time.monotonic() > deadline:
            partial = True
            break
        target = (i + 0.5) * span
        try:
            container.seek(int((start + target) / stream.time_base), stream=stream,
                           backward=True, any_frame=False)
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is None or frame.time - start >= target - 1.0 / info.fps:
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("seek to %.1f s failed: %s", target, exc)
            continue
        if chosen is None:
            continue
        sig = _signature(*sampler.yuv(chosen)) if (chosen.width, chosen.height) == (
            info.width, info.height) else _Sig(np.zeros(1), np.zeros(1))
        got += 1
        yield _RawShot(
            t_start=i * span,
            keyframe_t=target,
            sig=sig,
            image=_frame_image(chosen, keyframe_max_side),
            kind="sample",
            strength=0.0,
            t_end=(i + 1) * span,
            weight=span,
        )
    if got == 0:
        raise CorruptMedia("no frame could be decoded at any sampled position")
    warnings.append(
        f"sampled {got} frames evenly across a {_fmt_duration(info.duration_s)} file "
        "(too long to decode fully); no shot detection"
    )
    if partial:
        warnings.append(f"decode time limit reached after {got} of {n} samples")
    yield _ScanEnd(info, warnings, partial, frame_exact=False)


# --------------------------------------------------------------------------- frame cap


def _merge_pair(a: _RawShot, b: _RawShot) -> _RawShot:
    keep = a if a.weight >= b.weight else b
    return _RawShot(
        t_start=a.t_start,
        keyframe_t=keep.keyframe_t,
        sig=keep.sig,
        image=keep.image,
        kind=a.kind,
        strength=a.strength,
        t_end=b.t_end,
        weight=keep.weight,
    )


def _cap(shots: list[_RawShot], limit: int) -> list[_RawShot]:
    """Merge across the weakest boundaries until at most `limit` shots remain."""
    shots = list(shots)
    limit = max(1, limit)
    while len(shots) > limit:
        best = min(
            range(1, len(shots)),
            key=lambda i: (shots[i].strength, shots[i].t_end - shots[i - 1].t_start),
        )
        shots[best - 1 : best + 1] = [_merge_pair(shots[best - 1], shots[best])]
    return shots


def _to_shots(raw: list[_RawShot]) -> list[Shot]:
    out = []
    for i, r in enumerate(raw):
        assert r.image is not None
        out.append(
            Shot(
                index=i,
                t_start=round(r.t_start, 4),
                t_end=round(r.t_end, 4),
                keyframe_t=round(r.keyframe_t, 4),
                image=r.image,
                boundary="start" if i == 0 else r.kind,
                boundary_score=round(float(r.strength), 4),
            )
        )
    return out


class _Collector:
    """Gathers streamed shots, compacting as it goes so memory stays near max_frames."""

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max(1, max_frames)
        self.shots: list[_RawShot] = []
        self.seen = 0

    def add(self, shot: _RawShot) -> None:
        self.shots.append(shot)
        self.seen += 1
        if len(self.shots) > self.max_frames + max(16, self.max_frames // 4):
            self.shots = _cap(self.shots, self.max_frames)

    def result(
        self, info: VideoInfo, warnings: list[str], partial: bool, frame_exact: bool = True
    ) -> KeyframeResult:
        warnings = list(warnings)
        shots = self.shots
        if len(shots) > self.max_frames or self.seen > self.max_frames:
            shots = _cap(shots, self.max_frames)
            warnings.append(
                f"frame cap: indexed {len(shots)} keyframes for {self.seen} detected shots "
                f"of a {_fmt_duration(info.duration_s)} file (max_frames={self.max_frames}); "
                "neighbouring shots were merged"
            )
        return KeyframeResult(_to_shots(shots), warnings, info, partial, frame_exact)


def extract_keyframes(
    path: str | os.PathLike[str],
    *,
    max_frames: int = 200,
    max_gap_s: float = 10.0,
    timeout_s: float | None = 300.0,
    keyframe_max_side: int = 640,
    max_dims: tuple[int, int] = DEFAULT_MAX_DIMS,
    max_full_decode_s: float = 3 * 3600.0,
    fast_decode: bool | None = None,
    params: DetectorParams | None = None,
) -> KeyframeResult:
    """Decode `path` in this process and return its shots with one keyframe each.

    ``timeout_s`` is a soft limit: decoding stops there and the shots so far come back with
    a warning (``partial=True``). Use ``extract_keyframes_bounded`` for a hard limit.
    ``fast_decode`` skips non-reference frames: about twice as fast, but a hard cut that
    lands on a skipped frame is reported one or two frames late. ``None`` (default) turns it
    on for HD and larger (>= 1280x720) or > 40 fps, where full decoding cannot keep 30x real
    time on two cores; smaller videos are decoded frame-exact.
    """
    deadline = time.monotonic() + timeout_s if timeout_s else None
    collector = _Collector(max_frames)
    for item in _scan(
        path,
        max_frames=max_frames,
        max_gap_s=max_gap_s,
        deadline=deadline,
        keyframe_max_side=keyframe_max_side,
        max_dims=max_dims,
        max_full_decode_s=max_full_decode_s,
        fast_decode=fast_decode,
        params=params or DetectorParams(),
    ):
        if isinstance(item, _ScanEnd):
            return collector.result(item.info, item.warnings, item.partial, item.frame_exact)
        collector.add(item)
    raise CorruptMedia("video scan ended without a result")  # pragma: no cover


# --------------------------------------------------------------------------- bounded decode


def _encode_image(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _decode_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def _child_main(conn: Any, path: str, kwargs: dict[str, Any]) -> None:
    """Child process: stream shots (JPEG bytes) up the pipe, then 'end' or 'error'."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        timeout_s = kwargs.pop("timeout_s")
        deadline = time.monotonic() + timeout_s if timeout_s else None
        for item in _scan(path, deadline=deadline, **kwargs):
            if isinstance(item, _ScanEnd):
                conn.send(("end", item.info, item.warnings, item.partial, item.frame_exact))
            else:
                img = item.image
                item.image = None
                conn.send(("shot", item, _encode_image(img) if img is not None else b""))
    except GlimpseError as exc:
        conn.send(("error", type(exc).__name__, exc.message, exc.detail))
    except Exception as exc:  # anything else is a decoder problem with this file
        conn.send(("error", "CorruptMedia", f"video decoding failed: {exc}", {}))
    finally:
        conn.close()


_ERRORS: dict[str, type[GlimpseError]] = {
    c.__name__: c for c in (CorruptMedia, UnsupportedMedia, MediaTooLarge, DecodeTimeout)
}


def extract_keyframes_bounded(
    path: str | os.PathLike[str],
    *,
    max_frames: int = 200,
    max_gap_s: float = 10.0,
    timeout_s: float = 300.0,
    keyframe_max_side: int = 640,
    max_dims: tuple[int, int] = DEFAULT_MAX_DIMS,
    max_full_decode_s: float = 3 * 3600.0,
    fast_decode: bool | None = None,
    params: DetectorParams | None = None,
    start_method: str = "spawn",
) -> KeyframeResult:
    """`extract_keyframes` in a child process, killed if it runs past `timeout_s`.

    The child stops itself a little before the limit and reports what it has; if it is
    stuck (inside the decoder) it is killed at the limit and the shots it already sent come
    back with a warning. With nothing sent, ``DecodeTimeout`` (a CorruptMedia) is raised.
    """
    ctx = mp.get_context(start_method)
    recv, send = ctx.Pipe(duplex=False)
    soft = max(0.05, timeout_s * 0.85 - 0.5) if timeout_s > 2 else timeout_s * 0.85
    kwargs: dict[str, Any] = dict(
        max_frames=max_frames,
        max_gap_s=max_gap_s,
        timeout_s=soft,
        keyframe_max_side=keyframe_max_side,
        max_dims=max_dims,
        max_full_decode_s=max_full_decode_s,
        fast_decode=fast_decode,
        params=params or DetectorParams(),
    )
    started = time.monotonic()
    deadline = started + timeout_s
    proc = ctx.Process(  # type: ignore[attr-defined]
        target=_child_main, args=(send, os.fspath(path), kwargs), daemon=True)
    proc.start()
    send.close()
    collector = _Collector(max_frames)
    end: tuple[VideoInfo, list[str], bool, bool] | None = None
    last_t = 0.0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not recv.poll(remaining):
                break
            try:
                msg = recv.recv()
            except EOFError:
                break
            if msg[0] == "shot":
                raw: _RawShot = msg[1]
                raw.image = _decode_image(msg[2])
                last_t = raw.t_end
                collector.add(raw)
            elif msg[0] == "end":
                end = (msg[1], msg[2], msg[3], msg[4])
                break
            else:
                _, name, message, detail = msg
                raise _ERRORS.get(name, CorruptMedia)(message, detail=detail)
    finally:
        killed = proc.is_alive() and end is None
        if proc.is_alive():
            if killed:
                proc.kill()
            proc.join(timeout=5)
            if proc.is_alive():  # pragma: no cover
                proc.kill()
                proc.join(timeout=5)
        recv.close()
    if end is not None:
        return collector.result(*end)
    elapsed = time.monotonic() - started
    pid = proc.pid
    if not collector.shots:
        if killed or elapsed >= timeout_s:
            raise DecodeTimeout(
                f"video decoding did not finish within {timeout_s:g} s and was stopped",
                detail={"timeout_s": timeout_s, "pid": pid},
            )
        raise CorruptMedia(
            f"video decoder process died (exit code {proc.exitcode})",
            detail={"exitcode": proc.exitcode, "pid": pid},
        )
    try:
        info = probe_video(path, max_dims=max_dims)
    except GlimpseError:  # pragma: no cover - it opened in the child
        info = VideoInfo(last_t, 0.0, 0, 0, "unknown")
    why = "was stopped at the time limit" if killed else f"died (exit code {proc.exitcode})"
    return collector.result(
        info,
        [f"decoder {why}: indexed the first {last_t:.1f} s of a "
         f"{_fmt_duration(info.duration_s)} file"],
        True,
    )


# --------------------------------------------------------------------------- summary & moments


def _times(x: Any) -> tuple[float, float]:
    if isinstance(x, tuple | list):
        return float(x[0]), float(x[1])
    return float(x.t_start), float(x.t_end)


def summarize_shots(
    descriptions: Sequence[tuple[Any, Description]],
    *,
    max_tags: int = 20,
    max_ocr_lines: int = 50,
) -> Description:
    """One Description for a whole video, built only from the shots' own evidence.

    ``descriptions`` pairs shot times — a ``(t_start, t_end)`` tuple or a ``Shot`` — with
    that shot's Description. A tag's score is the duration-weighted mean of its per-shot
    score over the whole video (a tag on screen throughout at 0.9 scores 0.9; on a tenth of
    it, 0.09), so "videos about X" rank by how much of the video shows X.
    """
    if not descriptions:
        return Description(caption="", extra={"shots": 0, "duration_s": 0.0})
    spans = [_times(t) for t, _ in descriptions]
    durs = [max(1e-3, b - a) for a, b in spans]
    total = sum(durs)
    tag_w: dict[str, float] = {}
    tag_label: dict[str, str] = {}
    tag_src: dict[str, Counter[str]] = {}
    tag_shots: dict[str, list[int]] = {}
    obj_shots: dict[str, list[int]] = {}
    obj_max: Counter[str] = Counter()
    obj_secs: dict[str, float] = {}
    ocr: dict[str, OcrLine] = {}
    for i, ((_, desc), dur) in enumerate(zip(descriptions, durs, strict=True)):
        best: dict[str, Tag] = {}
        for tag in desc.tags:
            key = tag.label.strip().lower()
            if key and (key not in best or tag.score > best[key].score):
                best[key] = tag
        for key, tag in best.items():
            tag_w[key] = tag_w.get(key, 0.0) + tag.score * dur
            tag_label.setdefault(key, tag.label.strip())
            tag_src.setdefault(key, Counter())[tag.source] += 1
            tag_shots.setdefault(key, []).append(i)
        per_shot = Counter(o.label.strip().lower() for o in desc.objects if o.label.strip())
        for label, cnt in per_shot.items():
            obj_shots.setdefault(label, []).append(i)
            obj_max[label] = max(obj_max[label], cnt)
            obj_secs[label] = obj_secs.get(label, 0.0) + dur
        for line in desc.ocr:
            key = " ".join(line.text.split()).lower()
            if not key:
                continue
            if key not in ocr:
                ocr[key] = OcrLine(" ".join(line.text.split()), line.score, line.box)
            elif line.score > ocr[key].score:
                ocr[key] = OcrLine(ocr[key].text, line.score, ocr[key].box)
    ranked = sorted(tag_w.items(), key=lambda kv: (-kv[1], kv[0]))[:max_tags]
    tags = [
        Tag(tag_label[k], round(w / total, 4), tag_src[k].most_common(1)[0][0]) for k, w in ranked
    ]
    ocr_lines = list(ocr.values())[:max_ocr_lines]
    start, end = min(a for a, _ in spans), max(b for _, b in spans)
    parts = [f"Video, {len(descriptions)} shots over {end - start:.1f} s"]
    main = [t.label for t in tags if t.source != "hierarchy"][:5] or [t.label for t in tags[:5]]
    if main:
        parts.append("mostly showing " + ", ".join(main))
    if obj_shots:
        objs = sorted(obj_shots, key=lambda k: (-len(obj_shots[k]), k))[:5]
        parts.append("objects: " + ", ".join(f"{k} (in {len(obj_shots[k])} shots)" for k in objs))
    if ocr_lines:
        parts.append("on-screen text: " + "; ".join(f'"{o.text}"' for o in ocr_lines[:3]))
    return Description(
        caption="; ".join(parts) + ".",
        tags=tags,
        ocr=ocr_lines,
        objects=[],
        colors={},
        extra={
            "shots": len(descriptions),
            "duration_s": round(end - start, 3),
            "tag_shots": {tag_label[k]: tag_shots[k] for k, _ in ranked},
            "object_counts": {
                k: {"shots": len(v), "max_per_shot": obj_max[k], "seconds": round(obj_secs[k], 3)}
                for k, v in obj_shots.items()
            },
        },
    )


def merge_moments(
    hits: Sequence[tuple[float, float, float] | tuple[float, float, float, int]],
    gap_s: float = 1.0,
) -> list[Moment]:
    """Merge matching shots that touch or lie within `gap_s` of each other into moments.

    Each hit is ``(t_start, t_end, score)`` (its shot index is its position in `hits`) or
    ``(t_start, t_end, score, shot_index)``. A moment scores as its best shot. Moments come
    back in time order.
    """
    items = []
    for pos, h in enumerate(hits):
        a, b, s = float(h[0]), float(h[1]), float(h[2])
        idx = int(h[3]) if len(h) > 3 else pos  # type: ignore[misc]
        if b < a:
            a, b = b, a
        items.append((a, b, s, idx))
    items.sort(key=lambda x: (x[0], x[1]))
    out: list[Moment] = []
    for a, b, s, idx in items:
        if out and a - out[-1].t_end <= gap_s:
            m = out[-1]
            m.t_end = max(m.t_end, b)
            m.score = max(m.score, s)
            m.shot_indices.append(idx)
        else:
            out.append(Moment(a, b, s, [idx]))
    return out


__all__ = [
    "DecodeTimeout",
    "DetectorParams",
    "KeyframeResult",
    "Moment",
    "Shot",
    "VideoInfo",
    "extract_keyframes",
    "extract_keyframes_bounded",
    "merge_moments",
    "probe_video",
    "summarize_shots",
]
