"""Cutting an instance out of its source: the file's own alpha where it has one, else
OpenCV's GrabCut initialised with the instance's box, else the box itself with soft edges."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from indexer.domain import Box

GRABCUT_SIDE = 256  # GrabCut runs on a copy of at most this side (its cost is per pixel)
MIN_MASK_SHARE = 0.08  # a GrabCut mask smaller than this share of the box is a failure


@dataclass
class Cutout:
    image: Image.Image  # RGBA, cropped tight to the object's mask
    method: str  # alpha | grabcut | box
    source_box: Box  # on the source view: the crop the cut-out came from


def cut(rgba: Image.Image, box: Box | None, *, seed: int = 0) -> Cutout:
    """The instance inside `box` (None: the whole image) as a tight RGBA cut-out."""
    w, h = rgba.size
    b = box or Box(0, 0, w, h)
    x0, y0 = max(0, int(b.x0)), max(0, int(b.y0))
    x1, y1 = min(w, int(round(b.x1))), min(h, int(round(b.y1)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise ValueError(f"box {b.as_list()} is too small to cut from")
    region = rgba.crop((x0, y0, x1, y1))
    alpha = np.asarray(region.getchannel("A"))
    if float((alpha < 250).mean()) >= 0.03 and float((alpha > 127).mean()) >= 0.02:
        return _tight(region, alpha, "alpha", (x0, y0))
    # GrabCut on the box: from a detector box, the box's own border is the background
    # sample; for a whole view (a photo tagged with the concept) a 6 % inset frame is
    mask = _grabcut(rgba.convert("RGB"), (x0, y0, x1, y1), whole=box is None, seed=seed)
    if mask is not None:
        return _tight(region, mask, "grabcut", (x0, y0))
    soft = Image.new("L", region.size, 0)
    inset = max(2, min(region.size) // 12)
    soft.paste(255, (inset, inset, region.width - inset, region.height - inset))
    soft = soft.filter(ImageFilter.GaussianBlur(inset / 2))
    out = region.copy()
    out.putalpha(soft)
    return Cutout(out, "box", Box(x0, y0, x1, y1))


def _grabcut(rgb: Image.Image, rect: tuple[int, int, int, int], *, whole: bool,
             seed: int) -> np.ndarray | None:
    x0, y0, x1, y1 = rect
    pad = 0 if whole else int(0.08 * max(x1 - x0, y1 - y0))
    cx0, cy0 = max(0, x0 - pad), max(0, y0 - pad)
    cx1, cy1 = min(rgb.width, x1 + pad), min(rgb.height, y1 + pad)
    crop = rgb.crop((cx0, cy0, cx1, cy1))
    s = min(1.0, GRABCUT_SIDE / max(crop.size))
    small = crop.resize((max(8, round(crop.width * s)), max(8, round(crop.height * s))),
                        Image.Resampling.BILINEAR)
    img = cv2.cvtColor(np.asarray(small), cv2.COLOR_RGB2BGR)
    sw, sh = small.size
    if whole:
        ix, iy = max(1, round(0.06 * sw)), max(1, round(0.06 * sh))
        r = (ix, iy, sw - 2 * ix, sh - 2 * iy)
    else:
        r = (max(1, round((x0 - cx0) * s)), max(1, round((y0 - cy0) * s)),
             max(2, round((x1 - x0) * s) - 2), max(2, round((y1 - y0) * s) - 2))
    mask = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)  # GrabCut's GMM initialisation draws from OpenCV's global RNG
    try:
        cv2.grabCut(img, mask, r, bgd, fgd, 4, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None
    fg = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    fg = _largest_component(fg)
    full = np.asarray(Image.fromarray(fg).resize(crop.size, Image.Resampling.BILINEAR))
    # back onto the box's own crop (the padded margin is dropped)
    ox, oy = x0 - cx0, y0 - cy0
    out = full[oy:oy + (y1 - y0), ox:ox + (x1 - x0)]
    if out.size == 0 or float((out > 127).mean()) < MIN_MASK_SHARE:
        return None
    return np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(1.2)))


def _largest_component(fg: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(  # type: ignore[call-overload]
        (fg > 0).astype(np.uint8), connectivity=8)
    if n <= 2:
        return fg
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == keep, 255, 0).astype(np.uint8)


def _tight(region: Image.Image, alpha: np.ndarray, method: str,
           origin: tuple[int, int]) -> Cutout:
    ys, xs = np.nonzero(alpha > 24)
    if len(xs) == 0:
        raise ValueError("the cut-out is empty")
    bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    out = region.copy()
    out.putalpha(Image.fromarray(alpha.astype(np.uint8)))
    out = out.crop((bx0, by0, bx1, by1))
    ox, oy = origin
    return Cutout(out, method, Box(ox + bx0, oy + by0, ox + bx1, oy + by1))
