"""Measured colours: named dominant colour of the centre (main) region and of the border
(background), plus the whole image's palette. HSV rules on a 64 px thumbnail."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from PIL import Image

from indexer.domain import Box, DetectedObject

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


def colour_shapes(image: Image.Image, *, side: int = 192, max_shapes: int = 8,
                  min_area: float = 0.004) -> list[DetectedObject]:
    """Solid, uniformly coloured shapes that stand free of the image border — the parts of
    diagrams, signs, icons and generated test images — labelled by measured colour and
    geometry: "red square", "blue circle", "green rectangle", "yellow triangle".

    Measured, not recognised: the label says the colour name of the pixels and how the
    component fills its bounding box (≈1 rectangle, ≈π/4 ellipse, ≈1/2 triangle). Regions
    touching the border (backgrounds, sky) and ragged ones (photo texture) are dropped.
    The score is the component's fill regularity, 0..1."""
    import cv2

    w, h = image.size
    s = side / max(w, h)
    small = image.convert("RGB").resize((max(8, round(w * s)), max(8, round(h * s))),
                                        Image.Resampling.NEAREST)
    names = name_pixels(np.asarray(small.convert("HSV")))
    sh, sw = names.shape
    border = np.concatenate([names[0], names[-1], names[:, 0], names[:, -1]])
    background = Counter(border.tolist()).most_common(1)[0][0]
    found: list[tuple[float, DetectedObject]] = []
    for idx in np.unique(names):
        if idx == background:
            continue
        mask = (names == idx).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        for k in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[k])
            if area < min_area * sh * sw or bw < 4 or bh < 4:
                continue
            if x == 0 or y == 0 or x + bw >= sw or y + bh >= sh:
                continue
            comp = (labels[y:y + bh, x:x + bw] == k).astype(np.uint8)
            contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            if not contours:
                continue
            c = max(contours, key=cv2.contourArea)
            perim = cv2.arcLength(c, True)
            corners = len(cv2.approxPolyDP(c, 0.04 * perim, True))
            circularity = 4 * np.pi * area / max(perim * perim, 1e-6)
            shape = _shape(area / float(bw * bh), bw / float(bh), corners, circularity)
            if shape is None:
                continue
            regular = 1.0 - min(1.0, abs(area / float(bw * bh) - _IDEAL[shape]) / 0.15)
            box = Box(x / s, y / s, (x + bw) / s, (y + bh) / s)
            label = f"{NAMES[int(idx)]} {shape}"
            found.append((float(area),
                          DetectedObject(label, round(float(max(0.5, regular)), 3), box)))
    found.sort(key=lambda t: -t[0])
    return [o for _, o in found[:max_shapes]]


_IDEAL = {"square": 1.0, "rectangle": 1.0, "circle": np.pi / 4, "ellipse": np.pi / 4,
          "triangle": 0.5}


def _shape(fill: float, aspect: float, corners: int, circularity: float) -> str | None:
    """Geometry from the component's fill of its box, its polygon corners and its
    circularity 4πA/P² (1 for a disc); anything irregular is no shape at all."""
    squareish = 0.8 <= aspect <= 1.25
    if fill >= 0.9 and corners == 4:
        return "square" if squareish else "rectangle"
    if 0.7 <= fill < 0.86 and corners > 4 and circularity >= 0.8:
        return "circle" if squareish else "ellipse"
    if 0.42 <= fill < 0.58 and corners == 3:
        return "triangle"
    return None
