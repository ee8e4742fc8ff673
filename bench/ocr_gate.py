"""How good is the OCR gate? `likely_text` decides whether the OCR detector runs at all, so
what matters is its recall against the full OCR pass (text the gate skips is never read) and
how many text-free images it lets through (each costs a detector pass, ~40-100 ms here).

The set: every photo scikit-image and matplotlib ship (some with real text: a sign, a
motorcycle's brand, a package), generated overlays of words in six sizes and random
colours (with and without a backing box) on the bundled samples at 1x / 1.5x / 2.5x, plain
rescaled samples, and the ingest bench's photo crops. Truth is what the full OCR pass reads
(a line of >= 2 characters at score >= 0.5), not what was drawn."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("OPEN", "SALE 50%", "YAMAMA", "Exit", "Main Street", "No parking", "Cafe 24h", "1984",
         "Platform 9", "Hello world")


def gate_set(seed: int = 3) -> list[tuple[str, Image.Image]]:
    import matplotlib
    import skimage

    from bench.photos import SAMPLES, synth_photos

    rng = np.random.default_rng(seed)
    out: list[tuple[str, Image.Image]] = []
    sk = Path(skimage.__file__).parent / "data"
    for p in sorted([*sk.glob("*.png"), *sk.glob("*.jpg")]):
        out.append((f"skimage:{p.name}", Image.open(p).convert("RGB")))
    mp = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
        if (mp / name).exists():
            out.append((f"matplotlib:{name}", Image.open(mp / name).convert("RGB")))
    bases = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))
             if p.stem != "page"]
    for i in range(60):
        scale = float(rng.choice([1.0, 1.5, 2.5]))
        b = bases[i % len(bases)]
        b = b.resize((int(b.width * scale), int(b.height * scale)), Image.Resampling.LANCZOS)
        if i % 3 == 0:
            out.append((f"plain-{i}", b))
            continue
        h = int(int(rng.choice([10, 13, 16, 22, 32, 48])) * scale)
        font = ImageFont.load_default(size=h)
        d = ImageDraw.Draw(b)
        word = WORDS[i % len(WORDS)]
        x = int(rng.uniform(0, max(1, b.width * 0.6)))
        y = int(rng.uniform(0, b.height - h * 1.5))
        col = tuple(int(c) for c in rng.integers(0, 255, 3))
        if rng.random() < 0.5:
            tw = d.textlength(word, font=font)
            d.rectangle([x - 4, y - 4, x + tw + 4, y + h * 1.3],
                        fill=tuple(255 - c for c in col))
        d.text((x, y), word, fill=col, font=font)
        out.append((f"overlay-{h}px-{i}", b))
    with tempfile.TemporaryDirectory() as tmp:
        for p in synth_photos(36, Path(tmp)):
            out.append((f"bench:{p.name}", Image.open(p).convert("RGB")))
    return out


def bench_ocr_gate() -> dict[str, Any]:
    from indexer.models.cpu.ocr import OcrEngine, likely_text

    engine = OcrEngine(threads=1)
    engine.load()
    rows = []
    for name, im in gate_set():
        t0 = time.perf_counter()
        truth = bool(engine.read(im))
        t1 = time.perf_counter()
        passed = likely_text(im)
        t2 = time.perf_counter()
        rows.append((name, truth, passed, (t1 - t0) * 1000, (t2 - t1) * 1000))
    text = [r for r in rows if r[1]]
    plain = [r for r in rows if not r[1]]
    return {
        "images": len(rows), "with_text": len(text),
        "recall": round(sum(r[2] for r in text) / max(1, len(text)), 3),
        "missed": [r[0] for r in text if not r[2]],
        "passes_text_free": round(sum(r[2] for r in plain) / max(1, len(plain)), 3),
        "gate_ms": round(float(np.mean([r[4] for r in rows])), 2),
        "full_ocr_ms_text_free": round(float(np.mean([r[3] for r in plain])), 1),
        "full_ocr_ms_with_text": round(float(np.mean([r[3] for r in text])), 1),
    }
