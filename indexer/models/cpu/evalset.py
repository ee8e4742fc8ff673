"""A small fixed evaluation set for the cpu backend: scikit-image's bundled sample photos
(scikit-image is a dev dependency; imported only here) plus generated images (a sign with
text). Used by scripts/eval_conse.py, bench/cpu_model.py and the tests."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from indexer.domain import ViewInput

SAMPLES = (
    "chelsea", "coffee", "rocket", "astronaut", "camera", "horse", "hubble_deep_field",
    "immunohistochemistry", "page", "coins", "moon", "brick", "grass", "gravel",
    "stereo_motorcycle", "colorwheel", "retina",
)

# (query, the image it should rank first)
QUERIES: tuple[tuple[str, str], ...] = (
    ("a cat", "chelsea"),
    ("a cup of coffee", "coffee"),
    ("a rocket launch", "rocket"),
    ("a horse", "horse"),
    ("an astronaut", "astronaut"),
    ("a motorcycle", "stereo_motorcycle"),
    ("galaxies in deep space", "hubble_deep_field"),
    ("coins", "coins"),
    ("a brick wall", "brick"),
    ("a man with a camera", "camera"),
    ("an animal", "chelsea"),
    ("a hot drink", "coffee"),
    ("a vehicle", "stereo_motorcycle"),
    ("a pet", "chelsea"),
    ("a shop sign that says open", "sign"),
    ("a printed page of text", "page"),
    ("the surface of the moon", "moon"),
    ("a person", "astronaut"),
)


def sign(text: str = "OPEN", size: tuple[int, int] = (640, 480)) -> Image.Image:
    im = Image.new("RGB", size, (40, 90, 160))
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=110)
    w, h = size
    d.rectangle([w * 0.15, h * 0.3, w * 0.85, h * 0.7], fill=(240, 240, 240))
    d.text((w * 0.22, h * 0.35), text, fill=(200, 20, 20), font=font)
    return im


def sample(name: str) -> Image.Image:
    if name == "sign":
        return sign()
    from skimage import data

    a = getattr(data, name)()
    a = a[0] if isinstance(a, tuple) else a
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return Image.fromarray(a).convert("RGB")


def views(names: tuple[str, ...] = (*SAMPLES, "sign")) -> list[ViewInput]:
    return [ViewInput(view_id=n, image=sample(n)) for n in names]


def rank_metrics(sim: np.ndarray, names: list[str]) -> dict[str, float]:
    """sim float[n_queries, n_images] over QUERIES -> top-1 accuracy and MRR."""
    ranks = []
    for qi, (_, target) in enumerate(QUERIES):
        order = np.argsort(-sim[qi])
        ranks.append(int(np.nonzero(np.asarray(names)[order] == target)[0][0]) + 1)
    r = np.asarray(ranks)
    return {"top1": float((r == 1).mean()), "mrr": float((1.0 / r).mean()),
            "ranks": ranks}  # type: ignore[dict-item]
