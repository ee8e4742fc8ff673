#!/usr/bin/env python
"""Run the `glm` backend protocol on a tiny GLM-4.5V-architecture model, the `clip` embed
backend on tiny CLIP/SigLIP models, and the `diffusion` generation backend on a tiny Stable
Diffusion pipeline, on the GPU, and print timings (`--only diffusion` for that part).

On a GPU box: `python scripts/gpu_check.py` (glm in bf16, clip in fp16 on CUDA, about a minute
once torch is imported; `--only clip` or `--only glm` for one part). Here, without a GPU:
`python scripts/gpu_check.py --device cpu`.

clip: tiny random CLIP and SigLIP checkpoints and a random model with ViT-B/32's exact shapes
(indexer/models/clip/tiny.py) through `ClipEmbedder`, batches of 8 against batches of 1 and
against float32 on CPU; the twin's ms/image is what a real ViT-B/32 costs on that GPU.

The model is the unit tests' fixture (tests/unit/models/glm_fixture.py): same classes as
GLM-4.5V (Glm4vMoeForConditionalGeneration, MoE text layers with a sigmoid router, the real
patch geometry), random weights, saved to a temp dir and loaded through `GlmModel`, the loader
production uses. `--vision-depth/--vision-hidden/--image-side` widen the vision tower and the
images so the vision-feature cache saving is measured against a tower that costs something.
Outputs of random weights are meaningless; this checks that every path runs on the device and
how long each takes. It does not touch the real 106B checkpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _fixture_module() -> Any:
    path = ROOT / "tests" / "unit" / "models" / "glm_fixture.py"
    spec = importlib.util.spec_from_file_location("glm_fixture", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["glm_fixture"] = mod
    spec.loader.exec_module(mod)
    return mod


def _timed(
    label: str,
    rows: list[tuple[str, float, str]],
    fn: Callable[[], Any],
    note: str | Callable[[Any], str] = "",
) -> Any:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rows.append((label, dt, note(out) if callable(note) else note))
    return out


def _clip_one(name: str, ckpt: Path, device: str, dtype: str, images: list[Any],
              texts: list[str], cache: Path) -> bool:
    import numpy as np

    from indexer.models.clip import ClipEmbedder
    from indexer.settings import ModelSettings

    def embedder(dev: str, dt: str, bs: int) -> ClipEmbedder:
        e = ClipEmbedder(ModelSettings(embed_backend="clip", clip_model=str(ckpt), device=dev,
                                       dtype=dt, batch_size=bs, clip_runtime="torch",  # type: ignore[arg-type]
                                       cache_dir=str(cache)))
        e.load()
        return e

    rows: list[tuple[str, float, str]] = []
    dev8 = _timed("load", rows, lambda: embedder(device, dtype, 8),
                  lambda e: f"{e.device} {e.dtype}")
    dev1 = embedder(device, dtype, 1)
    ref = embedder("cpu", "float32", 8)
    _timed("warm-up", rows, lambda: dev8.embed_images(images[:8]))
    iv = _timed(f"embed_images x{len(images)} batch 8", rows, lambda: dev8.embed_images(images))
    iv1 = _timed(f"embed_images x{len(images)} batch 1", rows, lambda: dev1.embed_images(images))
    for k in (-2, -1):  # per image
        label, dt_, _ = rows[k]
        rows[k] = (label, dt_, f"{dt_ * 1000 / len(images):.2f} ms/image")
    tv = _timed(f"embed_texts x{len(texts)}", rows, lambda: dev8.embed_texts(texts))
    _timed("one query", rows, lambda: dev1.embed_texts(["a red car"]))
    ri, rt = ref.embed_images(images), ref.embed_texts(texts)
    checks = {
        "unit norm": bool(np.allclose(np.linalg.norm(iv, axis=1), 1.0, atol=1e-3)),
        "batch 8 = batch 1 (cos > 0.999)": bool(np.min((iv * iv1).sum(1)) > 0.999),
        "images vs float32 CPU (cos > 0.99)": bool(np.min((iv * ri).sum(1)) > 0.99),
        "texts vs float32 CPU (cos > 0.99)": bool(np.min((tv * rt).sum(1)) > 0.99),
    }
    print(f"== {name}: {dev8.model_id}  dim {dev8.dim}")
    width = max(len(r[0]) for r in rows)
    for label, dt_, note in rows:
        print(f"  {label:<{width}}  {dt_ * 1000:9.1f} ms  {note}")
    for label, passed in checks.items():
        print(f"  {'ok  ' if passed else 'FAIL'} {label}")
    for e in (dev8, dev1, ref):
        e.close()
    return all(checks.values())


def clip_check(device: str, dtype: str, n_images: int, twin: bool) -> bool:
    """The clip embed backend on tiny random CLIP and SigLIP checkpoints (and, with `twin`, a
    random model with ViT-B/32's shapes for real per-image timings) on `device`: half precision
    on CUDA by default, batches of 8 against batches of 1, each checked against float32 on CPU.
    Returns whether every check passed."""
    import numpy as np
    from PIL import Image

    from indexer.models.clip.tiny import (
        VIT_B32,
        build_shape_twin,
        build_tiny_clip,
        build_tiny_siglip,
    )

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (224 + 8 * i, 256, 3), dtype=np.uint8))
              for i in range(n_images)]
    texts = ["a red car", "a cat on a sofa", "two dogs playing in the snow", "a page of text"]
    ok = True
    with tempfile.TemporaryDirectory(prefix="clip-gpu-check-") as tmp:
        builds: dict[str, Callable[[Path], Path]] = {"tiny-clip": build_tiny_clip,
                                                     "tiny-siglip": build_tiny_siglip}
        if twin:
            builds["vit-b32-shapes"] = lambda out: build_shape_twin(out, VIT_B32)
        for name, build in builds.items():
            ckpt = build(Path(tmp) / name)
            ok = _clip_one(name, ckpt, device, dtype, images, texts, Path(tmp) / "cache") and ok
    return ok


def diffusion_check(device: str, steps: int = 20, side: int = 256) -> bool:
    """The diffusion generation backend (diffusers Stable Diffusion, text-to-image and the
    grounded img2img path) on a tiny random pipeline on `device` (fp16 on CUDA): runs, is
    finite, and repeats with the seed. Returns whether every check passed."""
    import numpy as np
    from PIL import Image

    from indexer.generation.base import Generated, SourceUse
    from indexer.generation.diffusion import DiffusionGenerator
    from indexer.generation.tiny_diffusion import build_tiny_pipeline

    class Composition:  # stands in for the cpu backend's composition of indexed instances
        name = "cpu"

        def generate(self, prompt: str, seed: int, *, size: tuple[int, int] = (512, 512),
                     tenant: str = "default") -> Generated:
            img = Image.new("RGB", size, (235, 235, 235))
            img.paste((180, 90, 40), (size[0] // 8, size[1] // 3, size[0] // 2, size[1] - 8))
            return Generated(img, "cpu", {}, [SourceUse("object", "dog", "m_x", "m_x:0")])

    with tempfile.TemporaryDirectory(prefix="diffusion-gpu-check-") as tmp:
        path = build_tiny_pipeline(Path(tmp) / "sd")
        ok = True
        for mode, grounding in (("text", None), ("grounded", Composition())):
            g = DiffusionGenerator(str(path), grounding=grounding, device=device, steps=steps)
            g.generate("a dog next to a cat", 0, size=(side, side))  # load + warm-up
            t0 = time.perf_counter()
            a = g.generate("a dog next to a cat", 1, size=(side, side))
            ms = (time.perf_counter() - t0) * 1000
            b = g.generate("a dog next to a cat", 1, size=(side, side))
            arr = np.asarray(a.image, dtype=np.float32)
            same = np.array_equal(np.asarray(a.image), np.asarray(b.image))
            good = a.image.size == (side, side) and bool(np.isfinite(arr).all()) and same
            print(f"diffusion {mode} on {g.device}: {ms:.0f} ms/image at {side}px, {steps} "
                  f"steps; repeatable {same}; {'ok' if good else 'FAIL'}")
            ok = ok and good
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="all", choices=["all", "glm", "clip", "diffusion"])
    ap.add_argument("--clip-images", type=int, default=32)
    ap.add_argument("--no-clip-twin", action="store_true",
                    help="skip the ViT-B/32-shaped random model (about 600 MB in a temp dir)")
    ap.add_argument("--device", default=None, help="cuda | cpu (default: cuda if available)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ap.add_argument("--vision-depth", type=int, default=6)
    ap.add_argument("--vision-hidden", type=int, default=256)
    ap.add_argument("--image-side", type=int, default=448, help="test image side in pixels")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import torch
    from PIL import Image

    from indexer.domain import Description, Turn, ViewInput
    from indexer.models.base import VisionLanguageModel
    from indexer.models.glm import GlmModel
    from indexer.settings import ModelSettings

    torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    clip_ok = True
    if args.only in ("all", "clip"):
        clip_ok = clip_check(device, args.dtype, args.clip_images, not args.no_clip_twin)
        print("CLIP OK" if clip_ok else "CLIP FAIL")
        if args.only == "clip":
            return 0 if clip_ok else 1
    if args.only in ("all", "diffusion"):
        diffusion_ok = diffusion_check(device)
        print("DIFFUSION OK" if diffusion_ok else "DIFFUSION FAIL")
        clip_ok = clip_ok and diffusion_ok  # the exit status covers every part that ran
        if args.only == "diffusion":
            return 0 if clip_ok else 1
    fx = _fixture_module()
    side = args.image_side
    pixels = 2 * side * side  # processors compare t*h*w (t = 2) with these pixel counts
    heads = max(1, args.vision_hidden // 64)
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="glm-gpu-check-") as tmp:
        ckpt = _timed(
            "build tiny checkpoint",
            rows,
            lambda: fx.build_tiny_glm(
                Path(tmp) / "ckpt",
                vision_overrides={
                    "depth": args.vision_depth,
                    "hidden_size": args.vision_hidden,
                    "num_heads": heads,
                    "intermediate_size": 4 * args.vision_hidden,
                },
                image_size={"shortest_edge": 2 * 56 * 56, "longest_edge": pixels},
            ),
        )
        settings = ModelSettings(
            backend="glm",
            path=str(ckpt),
            device=device,
            dtype=args.dtype,
            torch_threads=args.threads,
            batch_size=8,
        )
        model = GlmModel(settings, max_new_tokens=args.max_new_tokens, caption_max_new_tokens=8)
        _timed("load", rows, model.load, f"{model.device} {model.dtype}")
        assert isinstance(model, VisionLanguageModel)
        rng = np.random.default_rng(0)
        views = [
            ViewInput(
                f"view-{i}",
                Image.fromarray(rng.integers(0, 255, (side, side - 28 * i, 3), dtype=np.uint8)),
            )
            for i in range(args.views)
        ]
        frames = [(float(t), views[t % len(views)].image) for t in range(3)]

        vec = _timed("embed_texts x8", rows, lambda: model.embed_texts(["a red car"] * 8))
        assert vec.shape == (8, model.spaces["semantic"])
        model.vision_cache.clear()
        enc = _timed(
            f"encode_views x{len(views)}",
            rows,
            lambda: model.encode_views(views),
            lambda out: f"captions {[len(e.description.caption) for e in out]} chars",
        )
        _timed("embed_query_images", rows, lambda: model.embed_query_images(views[:1]))
        _timed("describe", rows, lambda: model.describe(views[0]))
        _timed(
            "score",
            rows,
            lambda: model.score("a red car", views[0], None),
            lambda s: f"p={s:.3f}",
        )
        descs = [e.description for e in enc]

        model.vision_cache.clear()
        cold = _timed(
            "answer (cold vision cache)",
            rows,
            lambda: model.answer("What is shown?", views, descs, thinking=False),
            lambda a: f"cache {a.debug['vision_cache']}",
        )
        warm = _timed(
            "answer (same views again)",
            rows,
            lambda: model.answer("What is shown?", views, descs, thinking=False),
            lambda a: f"cache {a.debug['vision_cache']}",
        )
        _timed(
            "answer thinking=on, 2 turns",
            rows,
            lambda: model.answer(
                "And the colours?",
                views,
                descs,
                [Turn("user", "What is shown?"), Turn("assistant", cold.text or "...")],
                thinking=True,
            ),
            lambda a: f"{len(a.steps)} steps",
        )
        _timed(
            "answer_video 3 frames",
            rows,
            lambda: model.answer_video("What happens?", frames, thinking=False),
            lambda a: f"video {a.debug['video'][0]['timestamps']}",
        )
        _timed(
            "extract tables",
            rows,
            lambda: model.extract(views[0], "tables"),
            lambda r: f"ok={r['ok']}",
        )
        _timed("score w/ description", rows, lambda: model.score("x", views[1], Description("y")))

        print(f"model_id  {model.model_id}")
        print(f"device    {model.device}  dtype {model.dtype}  torch {torch.__version__}")
        if torch.cuda.is_available() and model.device.type == "cuda":
            print(f"gpu       {torch.cuda.get_device_name(0)}")
            print(f"max mem   {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")
        print()
        width = max(len(r[0]) for r in rows)
        for label, dt, note in rows:
            print(f"{label:<{width}}  {dt * 1000:9.1f} ms  {note}")
        c, w = cold.debug, warm.debug
        print()
        print(
            "vision cache: cold answer {:.1f} ms (tower {:.1f} ms), warm answer {:.1f} ms "
            "(tower {:.1f} ms, hits {}); saving {:.1f} ms = {:.0f}%".format(
                c["seconds"] * 1000,
                c["vision_cache"]["tower_seconds"] * 1000,
                w["seconds"] * 1000,
                w["vision_cache"]["tower_seconds"] * 1000,
                w["vision_cache"]["hits"],
                (c["seconds"] - w["seconds"]) * 1000,
                100 * (c["seconds"] - w["seconds"]) / max(c["seconds"], 1e-9),
            )
        )
        print(f"cache stats: {model.vision_cache.stats()}")
        routing = warm.debug["routing"]
        print(
            f"routing: MoE layers {routing['moe_layers']}, top-{routing['top_k']} of "
            f"{routing['num_experts']}, {routing['tokens']} tokens in the last answer"
        )
        for layer, rep in routing["layers"].items():
            print(f"  layer {layer}: histogram {rep['histogram']}")
        ok = w["vision_cache"]["hits"] == len(views) and w["vision_cache"]["misses"] == 0
        print("OK" if ok else "FAIL: second answer did not hit the vision cache")
        return 0 if ok and clip_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
