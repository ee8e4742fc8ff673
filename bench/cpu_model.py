"""Throughput of the cpu model backend: images/s of encode_views with OCR off / gated / on,
and per-stage milliseconds per image (classifier, OCR, detectors, colours, text fusion).

The corpus is the evaluation set (scikit-image samples, a dev dependency) plus generated
signs, cycled to n_images. Models load once (not timed); one warm-up batch is not timed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from indexer.domain import ViewInput
from indexer.settings import ModelSettings

log = logging.getLogger(__name__)


def _corpus(n_images: int) -> list[ViewInput]:
    from indexer.models.cpu import evalset

    base = [(name, evalset.sample(name)) for name in evalset.SAMPLES]
    base += [(f"sign-{t}", evalset.sign(t)) for t in ("OPEN", "EXIT", "SALE 50%")]
    return [ViewInput(view_id=f"{base[i % len(base)][0]}-{i}", image=base[i % len(base)][1])
            for i in range(n_images)]


def bench_cpu_model(n_images: int = 40, settings: ModelSettings | None = None) -> dict[str, Any]:
    from indexer.models.cpu import CpuModel

    settings = settings or ModelSettings()
    model = CpuModel(replace_ocr(settings, "on"))
    t0 = time.perf_counter()
    model.load()
    load_s = time.perf_counter() - t0
    views = _corpus(n_images)
    model.encode_views(views[: min(len(views), settings.batch_size)])  # warm-up
    result: dict[str, Any] = {
        "model_id": model.model_id,
        "n_images": n_images,
        "torch_threads": settings.torch_threads,
        "batch_size": settings.batch_size,
        "load_s": round(load_s, 2),
        "modes": {},
    }
    for mode in ("off", "gated", "on"):
        model.settings = replace_ocr(settings, mode)
        model.timings = {}
        t = time.perf_counter()
        bs = max(1, settings.batch_size)
        for s in range(0, len(views), bs):
            model.encode_views(views[s : s + bs])
        wall = time.perf_counter() - t
        stages = {k: round(v * 1000 / n_images, 1) for k, v in sorted(model.timings.items())}
        result["modes"][mode] = {
            "images_per_s": round(n_images / wall, 2),
            "ms_per_image": round(wall * 1000 / n_images, 1),
            "stage_ms_per_image": stages,
        }
        log.info("cpu model bench ocr=%s: %.2f images/s %s", mode, n_images / wall, stages)
    return result


def replace_ocr(settings: ModelSettings, mode: str) -> ModelSettings:
    return replace_model(settings, ocr=mode)


def replace_model(settings: ModelSettings, **kw: Any) -> ModelSettings:
    return settings.model_copy(update=kw)


__all__ = ["bench_cpu_model"]
