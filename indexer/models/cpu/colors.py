"""Measured colours: named dominant colour of the centre (main) region and of the border
(background), plus the whole image's palette. HSV rules on a 64 px thumbnail."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from PIL import Image

NAMES = ("black", "white", "gray", "red", "orange", "brown", "yellow", "green", "cyan",
         "blue", "purple", "pink")


def name_pixels(hsv: np.ndarray) -> np.ndarray:
    """uint8 HSV (PIL scale, 0-255) -> array of colour-name indices."""
    h = hsv[..., 0].astype(np.float32) * 360 / 255
    s = hsv[..., 1].astype(np.float32) / 255
    v = hsv[..., 2].astype(np.float32) / 255
    out = np.full(h.shape, NAMES.index("gray"), np.int8)
    chroma = s >= 0.22
    hue_names = [
        (15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (195, "cyan"),
        (255, "blue"), (290, "purple"), (345, "pink"), (361, "red"),
    ]
    lo = 0.0
    for hi, name in hue_names:
        sel = chroma & (h >= lo) & (h < hi)
        out[sel] = NAMES.index(name)
        lo = hi
    brownish = chroma & (out == NAMES.index("orange")) & (v < 0.6)
    brownish |= chroma & (out == NAMES.index("red")) & (v < 0.45) & (s < 0.7)
    brownish |= chroma & (out == NAMES.index("yellow")) & (v < 0.45)
    out[brownish] = NAMES.index("brown")
    out[~chroma & (v >= 0.8)] = NAMES.index("white")
    out[v < 0.18] = NAMES.index("black")
    return out


def _summary(rgb: np.ndarray, names: np.ndarray) -> dict[str, Any]:
    counts = Counter(names.ravel().tolist())
    total = max(1, names.size)
    idx, n = counts.most_common(1)[0]
    sel = names == idx
    mean = rgb[sel].mean(axis=0) if sel.any() else rgb.reshape(-1, 3).mean(axis=0)
    return {"name": NAMES[idx], "share": round(n / total, 3),
            "rgb": [int(round(float(c))) for c in mean]}


def measure_colors(image: Image.Image) -> dict[str, Any]:
    small = image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32)
    names = name_pixels(np.asarray(small.convert("HSV")))
    centre = np.zeros((64, 64), bool)
    centre[16:48, 16:48] = True
    palette = Counter(names.ravel().tolist())
    return {
        "main": _summary(rgb[centre], names[centre]),
        "background": _summary(rgb[~centre], names[~centre]),
        "palette": [
            {"name": NAMES[i], "share": round(n / names.size, 3)}
            for i, n in palette.most_common(4)
            if n / names.size >= 0.05
        ],
    }
