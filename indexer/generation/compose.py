"""Blending cut-outs onto a background: alpha compositing after a partial match of each
cut-out's colour statistics (Reinhard et al. 2001, in Lab) to the background around where it
lands, or OpenCV's Poisson `seamlessClone`. Also the background itself (a scene view, cropped
to cover the canvas, or a plain studio backdrop) and recolouring for a colour attribute."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from indexer.domain import Box
from indexer.models.cpu.colors import NAMES, name_pixels

# hue (degrees) each chromatic colour name is recoloured to
HUES = {"red": 0, "orange": 28, "yellow": 55, "green": 120, "cyan": 180, "blue": 225,
        "purple": 272, "pink": 320, "brown": 25}
STATS_STRENGTH = 0.35  # how far a cut-out's lightness statistics move to the background's


def plain_background(width: int, height: int) -> Image.Image:
    """A light studio backdrop: near-white with a faint floor shade (no content of its own)."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    v = 250 - 14 * np.clip((y - 0.75) / 0.25, 0, 1)
    a = np.repeat(np.repeat(v, width, axis=1)[..., None], 3, axis=2)
    return Image.fromarray(a.astype(np.uint8), "RGB")


def cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover the canvas and centre-crop (no stretching)."""
    im = image.convert("RGB")
    s = max(width / im.width, height / im.height)
    im = im.resize((max(width, round(im.width * s)), max(height, round(im.height * s))),
                   Image.Resampling.LANCZOS)
    x0, y0 = (im.width - width) // 2, (im.height - height) // 2
    return im.crop((x0, y0, x0 + width, y0 + height))


def colour_name(rgba: Image.Image) -> tuple[str, float]:
    """The dominant colour name of the opaque pixels and its share of them."""
    small = rgba.convert("RGBA")
    small.thumbnail((96, 96))
    a = np.asarray(small.getchannel("A")) > 127
    names = name_pixels(np.asarray(small.convert("RGB").convert("HSV")))[a]
    if names.size == 0:
        return "gray", 0.0
    counts = np.bincount(names.astype(np.int64), minlength=len(NAMES))
    k = int(np.argmax(counts))
    return NAMES[k], float(counts[k] / names.size)


def recolour(rgba: Image.Image, colour: str) -> Image.Image:
    """Shift the hue of the coloured pixels to `colour` (white/black/gray: desaturate and set
    the lightness); alpha kept."""
    arr = np.asarray(rgba.convert("RGBA")).copy()
    rgb = arr[..., :3]
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    if colour in HUES:
        hsv[..., 0] = HUES[colour] * 255 / 360
        hsv[..., 1] = np.maximum(hsv[..., 1], 150)
        if colour == "brown":
            hsv[..., 2] = np.minimum(hsv[..., 2], 120)
        else:
            hsv[..., 2] = np.maximum(hsv[..., 2], 110)
    else:
        hsv[..., 1] = 0
        if colour == "white":
            hsv[..., 2] = 215 + 0.15 * hsv[..., 2]
        elif colour == "black":
            hsv[..., 2] = 0.15 * hsv[..., 2]
        else:
            hsv[..., 2] = 90 + 0.4 * hsv[..., 2]
    out = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB_FULL)
    arr[..., :3] = out
    return Image.fromarray(arr, "RGBA")


def match_stats(patch: Image.Image, around: Image.Image, strength: float = STATS_STRENGTH
                ) -> Image.Image:
    """Move the cut-out's Lab lightness mean/std part of the way to the background region's,
    so it sits in the scene's light; chroma is kept (it carries the object's colour)."""
    arr = np.asarray(patch.convert("RGBA")).copy()
    a = arr[..., 3] > 127
    if a.sum() < 16:
        return patch
    lab = cv2.cvtColor(arr[..., :3], cv2.COLOR_RGB2LAB).astype(np.float32)
    bg = cv2.cvtColor(np.asarray(around.convert("RGB")), cv2.COLOR_RGB2LAB).astype(np.float32)
    mu, sd = lab[..., 0][a].mean(), lab[..., 0][a].std() + 1e-3
    bmu, bsd = bg[..., 0].mean(), bg[..., 0].std() + 1e-3
    tmu = mu + strength * (bmu - mu)
    tsd = sd + strength * (bsd - sd)
    lab[..., 0] = np.clip((lab[..., 0] - mu) * (tsd / sd) + tmu, 0, 255)
    arr[..., :3] = cv2.cvtColor(lab.astype(np.uint8), cv2.COLOR_LAB2RGB)
    return Image.fromarray(arr, "RGBA")


def paste(canvas: Image.Image, patch: Image.Image, box: Box, *, blend: str = "alpha",
          match: bool = True) -> Box:
    """Place `patch` (RGBA) scaled into `box` on `canvas` (RGB, modified in place); returns
    the box actually covered."""
    w = max(2, round(box.x1 - box.x0))
    h = max(2, round(box.y1 - box.y0))
    x0, y0 = round(box.x0), round(box.y0)
    p = patch.resize((w, h), Image.Resampling.LANCZOS)
    if match:
        ax0, ay0 = max(0, x0 - w // 4), max(0, y0 - h // 4)
        ax1, ay1 = min(canvas.width, x0 + w + w // 4), min(canvas.height, y0 + h + h // 4)
        p = match_stats(p, canvas.crop((ax0, ay0, ax1, ay1)))
    if blend == "seamless":
        src = cv2.cvtColor(np.asarray(p.convert("RGB")), cv2.COLOR_RGB2BGR)
        dst = cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGB2BGR)
        mask = (np.asarray(p.getchannel("A")) > 127).astype(np.uint8) * 255
        cx, cy = x0 + w // 2, y0 + h // 2
        inside = (x0 >= 1 and y0 >= 1 and x0 + w < canvas.width - 1
                  and y0 + h < canvas.height - 1)
        if mask.any() and inside:
            out = cv2.seamlessClone(src, dst, mask, (cx, cy), cv2.NORMAL_CLONE)
            canvas.paste(Image.fromarray(cv2.cvtColor(out, cv2.COLOR_BGR2RGB)))
            return Box(x0, y0, x0 + w, y0 + h)
    canvas.paste(p.convert("RGB"), (x0, y0), p.getchannel("A"))
    return Box(x0, y0, x0 + w, y0 + h)
