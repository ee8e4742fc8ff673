"""Embedding cost: ms per image and per query for the configured embed backend, beside the cpu
backend's embedding measured in the same run (the baseline), so a deployment can be sized.

* `configured`: what `GLIMPSE_MODEL__EMBED_BACKEND` (and for clip `GLIMPSE_MODEL__CLIP_MODEL`)
  selects, on its configured runtime.
* `cpu_baseline`: the embedded default's embedding path (EfficientNet-Lite0 + ConSE for an
  image, MiniLM for a query), unless it is the configured one.
* `indexing`: encode_views per image (OCR off) of the cpu backend against clip beside the cpu
  describer, and how long the one-off zero-shot tag vocabulary takes to build.
* `clip_runtimes`: torch against onnxruntime for one CLIP checkpoint on CPU: the configured
  clip checkpoint, else a random model with openai/clip-vit-base-patch32's exact shapes (its
  speed here, none of its quality: no weights can be downloaded on this machine).

Images are photo crops of the bundled samples; queries are short search phrases; each call is
warmed up once and then timed over every item. "per image at batch B" is the batch's time / B.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from indexer.domain import ViewInput
from indexer.settings import ModelSettings, Settings

log = logging.getLogger(__name__)

QUERIES = (
    "a cat on a sofa", "a cup of coffee", "a rocket launch", "an astronaut in a white suit",
    "a page of text", "the night sky full of galaxies", "a red car parked on a street",
    "two dogs playing in the snow", "a birthday cake with candles", "a man riding a horse",
    "a bowl of fruit", "a city skyline at night",
)


def _per_item_ms(fn: Callable[[Sequence[Any]], Any], items: Sequence[Any], batch: int) -> float:
    fn(items[:batch])  # warm-up (first-call allocations, graph optimisation)
    t0 = time.perf_counter()
    for s in range(0, len(items), batch):
        fn(items[s:s + batch])
    return round((time.perf_counter() - t0) * 1000 / len(items), 2)


def _measure(embed_images: Callable[[Sequence[Image.Image]], Any],
             embed_texts: Callable[[Sequence[str]], Any], images: list[Image.Image],
             batch: int) -> dict[str, Any]:
    return {
        "ms_per_image_batched": _per_item_ms(embed_images, images, batch),
        "batch": batch,
        "ms_per_image_single": _per_item_ms(embed_images, images[: max(4, len(images) // 3)], 1),
        "ms_per_query": _per_item_ms(embed_texts, list(QUERIES), 1),
    }


def _clip(settings: ModelSettings, images: list[Image.Image], runtime: str) -> dict[str, Any]:
    from indexer.models.clip import ClipEmbedder

    emb = ClipEmbedder(settings.model_copy(update={"clip_runtime": runtime}))
    t0 = time.perf_counter()
    emb.load()
    out: dict[str, Any] = {"model_id": emb.model_id, "dim": emb.dim,
                           "device": str(emb.device), "dtype": str(emb.dtype),
                           "runtime": emb.runtime, "load_s": round(time.perf_counter() - t0, 2)}
    out.update(_measure(emb.embed_images, emb.embed_texts, images, settings.batch_size))
    emb.close()
    return out


def _cpu(settings: ModelSettings, images: list[Image.Image]) -> dict[str, Any]:
    from indexer.models.cpu import CpuModel

    model = CpuModel(settings.model_copy(update={"ocr": "off"}))
    t0 = time.perf_counter()
    model.load()
    out: dict[str, Any] = {"model_id": model.model_id, "dim": model.spaces["semantic"],
                           "load_s": round(time.perf_counter() - t0, 2),
                           "what": "image: classifier + ConSE (embed_query_images); "
                                   "query: MiniLM"}

    def images_fn(ims: Sequence[Image.Image]) -> Any:
        return model.embed_query_images([ViewInput(f"b{i}", im) for i, im in enumerate(ims)])

    out.update(_measure(images_fn, model.embed_texts, images, settings.batch_size))
    model.close()
    return out


def bench_embed(settings: Settings, *, n_images: int = 32) -> dict[str, Any]:
    from bench.photos import synth_photos

    m = settings.model
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-embed-") as tmp:
        images = [Image.open(p).convert("RGB")
                  for p in synth_photos(n_images, Path(tmp) / "crops", seed=5)]
        out: dict[str, Any] = {"n_images": n_images, "n_queries": len(QUERIES),
                               "embed_backend": m.embed_backend,
                               # other processes on the machine move these figures
                               "load_average_start": [round(x, 2) for x in os.getloadavg()]}
        if m.embed_backend == "clip" and m.clip_model:
            out["configured"] = _clip(m, images, m.clip_runtime)
        else:
            out["configured"] = _cpu(m, images)
            out["configured"]["note"] = (
                f"embed_backend={m.embed_backend} with backend={m.backend}: the cpu embedder"
                if m.embed_backend != "glm" else "glm embeddings need a GPU checkpoint: "
                "measured the cpu embedder")
        if "cpu-" not in str(out["configured"].get("model_id", "")):
            out["cpu_baseline"] = _cpu(m, images)
        if m.embed_backend == "clip" and m.clip_model:
            clip_settings, what = m, "the configured clip checkpoint"
        else:
            from indexer.models.clip.tiny import VIT_B32, build_shape_twin

            twin = build_shape_twin(Path(tmp) / "vit-b32-shapes", VIT_B32)
            clip_settings = m.model_copy(update={"clip_model": str(twin),
                                                 "cache_dir": str(Path(tmp) / "cache")})
            what = ("random weights with openai/clip-vit-base-patch32's shapes "
                    "(speed only; a random model's vectors mean nothing)")
        runs = {rt: _clip(clip_settings, images, rt) for rt in ("torch", "onnx")}
        faster = min(runs, key=lambda rt: runs[rt]["ms_per_image_batched"]
                     + runs[rt]["ms_per_query"])
        out["indexing"] = _indexing(m, clip_settings, images, Path(tmp) / "tags")
        out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        out["clip_runtimes"] = {"what": what, **runs, "faster": faster,
                                "image_speedup_onnx": _ratio(runs, "ms_per_image_batched"),
                                "query_speedup_onnx": _ratio(runs, "ms_per_query")}
        return out


def _indexing(m: ModelSettings, clip_settings: ModelSettings, images: list[Image.Image],
              cache: Path) -> dict[str, Any]:
    """encode_views per image (what ingest pays for the model, OCR off): the cpu backend
    alone against clip beside the cpu describer, and the one-off tag vocabulary build."""
    from indexer.models.clip import ClipEmbedder, ClipModel
    from indexer.models.clip.tags import TEMPLATES
    from indexer.models.cpu import CpuModel

    describer = CpuModel(m.model_copy(update={"ocr": "off"}))
    describer.load()
    clip = ClipModel(ClipEmbedder(clip_settings), describer, cache)
    clip.embedder.load()
    t0 = time.perf_counter()
    n_labels = len(clip.tagger.label_embeddings)
    vocab_s = round(time.perf_counter() - t0, 1)
    views = [ViewInput(f"v{i}", im) for i, im in enumerate(images)]
    bs = m.batch_size
    out = {
        "ocr": "off",
        "cpu_ms_per_image": _per_item_ms(describer.encode_views, views, bs),
        "clip_with_cpu_describer_ms_per_image": _per_item_ms(clip.encode_views, views, bs),
        "tag_vocabulary": {"labels": n_labels, "prompts": n_labels * len(TEMPLATES),
                           "build_s": vocab_s},
        "clip_model_id": clip.model_id,
    }
    describer.close()
    clip.embedder.close()
    return out


def _ratio(runs: dict[str, dict[str, Any]], key: str) -> float | None:
    a, b = runs["torch"].get(key), runs["onnx"].get(key)
    return round(a / b, 2) if a and b else None
