"""Frame signatures: soft-binned HSV histograms straight from decoded YUV planes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


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
