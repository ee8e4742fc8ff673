"""Bench photos made from the bundled samples (shared by the bench sections)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

SAMPLES = Path(__file__).resolve().parents[1] / "indexer" / "samples"


def synth_photos(n: int, out: Path, seed: int = 0) -> list[Path]:
    """Distinct photos made from the bundled samples: random crops, flips, colour and
    brightness changes (real photo statistics, unlike noise)."""
    rng = np.random.default_rng(seed)
    bases = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = bases[i % len(bases)]
        w, h = img.size
        f = rng.uniform(0.6, 0.95)
        cw, ch = int(w * f), int(h * f)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = img.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))
        p = out / f"photo_{i:04d}.jpg"
        im.save(p, quality=88)
        paths.append(p)
    return paths
