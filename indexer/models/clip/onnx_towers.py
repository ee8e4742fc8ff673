"""The CLIP image and text towers through onnxruntime on CPU: exported once per checkpoint with
the cpu backend's cache (indexer/models/cpu/onnx_cache.py: keyed by the weights, checked
against torch every time a graph is opened, torch is the fallback).

Only towers whose inputs are plain tensors are exported: `pixel_values` for the image tower
(SigLIP 2's NaFlex patches with their masks and shapes stay on torch) and the tokenizer's
`input_ids` (+ `attention_mask`) for the text tower. The bench `embed` section measures both
runtimes side by side; `GLIMPSE_MODEL__CLIP_RUNTIME` chooses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from indexer.models.clip.embedder import _features
from indexer.models.cpu import onnx_cache

TEXT_INPUTS = ("input_ids", "attention_mask")


class ImageTower(torch.nn.Module):
    """pixel_values -> projected image features (what get_image_features returns)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: Any) -> Any:
        return _features(self.model.get_image_features(pixel_values=pixel_values))


class TextTower(torch.nn.Module):
    """The tokenizer's tensors, positionally in `names` order -> projected text features."""

    def __init__(self, model: Any, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: Any) -> Any:
        kw = dict(zip(self.names, tensors, strict=True))
        return _features(self.model.get_text_features(**kw))


def _key_parts(path: Path, model: Any) -> dict[str, Any]:
    files = sorted(path.glob("*.safetensors")) + [path / "config.json"]
    return {"weights": onnx_cache.file_fingerprint(*files),
            "transformers": onnx_cache.package_version("transformers"),
            "attn": getattr(model.config, "_attn_implementation", None)}


def image_session(model: Any, path: Path, side: int, cache_dir: Path | None,
                  threads: int) -> Any | None:
    g = torch.Generator().manual_seed(0)
    example = (torch.randn(2, 3, side, side, generator=g),)
    check = (torch.randn(3, 3, side, side, generator=g),)
    return onnx_cache.onnx_session(
        ImageTower(model), example, name=f"clip-image-{path.name}"[:60],
        input_names=["pixel_values"], output_names=["image_embeds"],
        dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
        key_parts=_key_parts(path, model), cache_dir=cache_dir, threads=threads,
        check_inputs=[check], atol=2e-4, rtol=2e-3)


def text_session(model: Any, tokenize: Any, path: Path, names: tuple[str, ...],
                 cache_dir: Path | None, threads: int) -> Any | None:
    def inputs(texts: list[str]) -> tuple[Any, ...]:
        enc = tokenize(texts)
        return tuple(enc[k] for k in names)

    example = inputs(["a photo of a cat.", "a red double-decker bus on a rainy street"])
    check = inputs(["x", "a longer sentence that needs more tokens than the others do, " * 2,
                    "a dog"])
    dyn = {k: {0: "batch", 1: "seq"} for k in names}
    return onnx_cache.onnx_session(
        TextTower(model, names), example, name=f"clip-text-{path.name}"[:60],
        input_names=list(names), output_names=["text_embeds"],
        dynamic_axes={**dyn, "text_embeds": {0: "batch"}},
        key_parts=_key_parts(path, model), cache_dir=cache_dir, threads=threads,
        check_inputs=[check], atol=2e-4, rtol=2e-3)


def run(session: Any, feeds: dict[str, Any]) -> np.ndarray:
    arrays = {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in feeds.items()}
    return np.asarray(session.run(None, arrays)[0], np.float32)
