"""A CLIP-family checkpoint (CLIP, SigLIP, SigLIP 2, Chinese-CLIP, and any other transformers
model with `get_image_features` / `get_text_features`) as one joint text-image vector space.

`GLIMPSE_MODEL__CLIP_MODEL` is a local directory (always works, offline) or a hub id (downloaded
once into the Hugging Face cache on a machine that reaches the hub; `GLIMPSE_MODEL__CLIP_REVISION`
pins a revision). The space is named by the checkpoint: its name, its revision (the hub commit,
or `local`) and a fingerprint of its config and weights, so two checkpoints never share a
collection and a changed checkpoint gets a new one.

CUDA: half precision (`dtype=auto`), batches of `GLIMPSE_MODEL__BATCH_SIZE`. CPU: float32, the
towers through onnxruntime where they export (`GLIMPSE_MODEL__CLIP_RUNTIME`, onnx_towers.py).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexer.errors import ModelUnavailable
from indexer.models.base import l2_normalize
from indexer.settings import ModelSettings

log = logging.getLogger(__name__)

# the files a CLIP-family checkpoint needs (a hub download fetches only these)
CHECKPOINT_FILES = [
    "config.json", "*.safetensors", "*.json", "*.txt", "*.model", "vocab*", "merges*",
]


TEXT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def resolve_checkpoint(source: str, revision: str | None = None) -> tuple[Path, str, str]:
    """(local directory, display name, revision) of a local path or a hub id."""
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelUnavailable(f"no checkpoint at {p} (config.json missing)")
        return p.resolve(), p.resolve().name, "local"
    if p.exists() or source.startswith((".", "/", "~")):
        raise ModelUnavailable(f"GLIMPSE_MODEL__CLIP_MODEL={source!r} is not a checkpoint folder")
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(source, revision=revision,
                                       allow_patterns=CHECKPOINT_FILES))
    except Exception as e:  # offline, unknown id, gated repo: all "not available here"
        raise ModelUnavailable(
            f"could not get CLIP checkpoint {source!r} from the hub or its cache ({e}); "
            "point GLIMPSE_MODEL__CLIP_MODEL at a local checkpoint folder instead") from e
    # the cache keeps snapshots under .../snapshots/<commit>/
    rev = local.name if local.parent.name == "snapshots" else (revision or "main")
    return local, source, rev


def _space_dim(config: Any) -> int | None:
    """The joint space's width from the config alone (verified against a probe on load)."""
    for obj in (config, getattr(config, "text_config", None)):
        for attr in ("projection_dim", "projection_size"):
            v = getattr(obj, attr, None)
            if isinstance(v, int) and v > 0:
                return v
    text = getattr(config, "text_config", None)
    v = getattr(text, "hidden_size", None)
    return int(v) if isinstance(v, int) else None


def _features(out: Any) -> Any:
    """transformers 5 returns a model output (projected embedding in `pooler_output`) where
    older versions and some remote-code models return the tensor itself."""
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    if isinstance(out, tuple | list):
        return out[0]
    return out


class ClipEmbedder:
    """Text and image towers of one checkpoint; thread-safe (one lock per model call)."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        if not settings.clip_model:
            raise ModelUnavailable(
                "GLIMPSE_MODEL__EMBED_BACKEND=clip needs GLIMPSE_MODEL__CLIP_MODEL: a hub id "
                "(e.g. openai/clip-vit-base-patch32) or a local checkpoint folder")
        self.source = settings.clip_model
        self._identity: tuple[str, dict[str, int]] | None = None
        self.path: Path | None = None
        self.revision = ""
        self.model_type = ""
        self._lock = threading.RLock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._image_processor: Any = None
        self.device: Any = None
        self.dtype: Any = None
        self.max_length = 77
        self.pad_to_max = False
        self.logit_scale = 100.0
        self.logit_bias: float | None = None
        self.load_seconds = 0.0
        self._onnx_image: Any = None
        self._onnx_text: Any = None
        self._text_names: tuple[str, ...] = ()

    # ------------------------------------------------------------------ identity
    def _identify(self) -> tuple[str, dict[str, int]]:
        if self._identity is None:
            from transformers import AutoConfig

            from indexer.models.glm.model import checkpoint_fingerprint

            path, name, rev = resolve_checkpoint(self.source, self.settings.clip_revision)
            try:
                config = AutoConfig.from_pretrained(str(path), local_files_only=True)
            except Exception as e:
                raise ModelUnavailable(f"unreadable checkpoint config in {path}: {e}") from e
            dim = _space_dim(config)
            if dim is None:
                raise ModelUnavailable(f"{path}: cannot tell the embedding width from its "
                                       "config (no projection_dim / projection_size)")
            self.path, self.revision = path, rev
            self.model_type = str(getattr(config, "model_type", ""))
            slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
            fp = checkpoint_fingerprint(path, config.to_dict())
            self._identity = (f"clip:{slug}@{rev[:12]}:{fp}", {"semantic": dim})
        return self._identity

    @property
    def model_id(self) -> str:
        return self._identify()[0]

    @property
    def spaces(self) -> dict[str, int]:
        return dict(self._identify()[1])

    @property
    def dim(self) -> int:
        return self.spaces["semantic"]

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            self._identify()
            assert self.path is not None
            import torch
            from transformers import AutoModel, AutoProcessor

            t0 = time.perf_counter()
            torch.set_num_threads(max(1, int(self.settings.torch_threads)))
            dev = self.settings.device
            self.device = torch.device(
                dev if dev and dev != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
            dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                      "float16": torch.float16}
            self.dtype = (dtypes[self.settings.dtype] if self.settings.dtype != "auto" else
                          torch.float16 if self.device.type == "cuda" else torch.float32)
            try:
                processor = AutoProcessor.from_pretrained(str(self.path), local_files_only=True)
                model = AutoModel.from_pretrained(str(self.path), dtype=self.dtype,
                                                  local_files_only=True)
            except Exception as e:  # a broken or foreign checkpoint is an unavailable model
                raise ModelUnavailable(f"could not load CLIP checkpoint {self.path}: {e}") from e
            for method in ("get_image_features", "get_text_features"):
                if not callable(getattr(model, method, None)):
                    raise ModelUnavailable(
                        f"{self.path} ({type(model).__name__}) has no {method}: not a "
                        "CLIP-family checkpoint")
            self._model = model.to(self.device).eval()
            self._tokenizer = processor.tokenizer
            self._image_processor = processor.image_processor
            text_cfg = getattr(model.config, "text_config", model.config)
            ctx = int(getattr(text_cfg, "max_position_embeddings", 77) or 77)
            tok_max = int(getattr(self._tokenizer, "model_max_length", ctx) or ctx)
            self.max_length = min(ctx, tok_max) if tok_max > 0 else ctx
            # SigLIP-family text towers pool the last position and were trained on texts
            # padded to the full context: pad the same way or the vectors move
            self.pad_to_max = self.model_type.startswith("siglip")
            self.logit_scale = float(model.logit_scale.detach().float().exp().item()) \
                if hasattr(model, "logit_scale") else 100.0
            bias = getattr(model, "logit_bias", None)
            self.logit_bias = float(bias.detach().float().item()) if bias is not None else None
            if self.device.type == "cpu" and self.settings.clip_runtime in ("auto", "onnx"):
                self._open_onnx()
            probe = self._texts_batch(["a photo"])
            if probe.shape[1] != self.dim:
                self._model = None
                raise ModelUnavailable(f"{self.path}: text features are {probe.shape[1]}-d, "
                                       f"the config says {self.dim}")
            self.load_seconds = time.perf_counter() - t0
            log.info("clip %s loaded on %s/%s in %.1fs", self.model_id, self.device,
                     self.dtype, self.load_seconds)

    def _open_onnx(self) -> None:
        """onnxruntime sessions for the towers that export (each falls back to torch)."""
        from indexer.models.clip import onnx_towers

        assert self.path is not None
        cache = Path(self.settings.cache_dir).expanduser() if self.settings.cache_dir else None
        threads = max(1, int(self.settings.torch_threads))
        px = self._image_processor(images=[Image.new("RGB", (64, 48))], return_tensors="pt")
        if set(px.keys()) == {"pixel_values"}:
            side = int(px["pixel_values"].shape[-1])
            if int(px["pixel_values"].shape[-2]) == side:
                self._onnx_image = onnx_towers.image_session(self._model, self.path, side,
                                                             cache, threads)
        names = tuple(k for k in TEXT_NAMES if k in self._tokenize(["a"]))
        self._text_names = names
        self._onnx_text = onnx_towers.text_session(self._model, self._tokenize, self.path,
                                                   names, cache, threads)
        log.info("clip %s on CPU: image tower %s, text tower %s", self.model_id,
                 "onnxruntime" if self._onnx_image is not None else "torch",
                 "onnxruntime" if self._onnx_text is not None else "torch")

    @property
    def runtime(self) -> dict[str, str]:
        return {"image": "onnxruntime" if self._onnx_image is not None else "torch",
                "text": "onnxruntime" if self._onnx_text is not None else "torch"}

    # ------------------------------------------------------------------ encoding
    def _tokenize(self, texts: list[str]) -> Any:
        return self._tokenizer(texts, padding="max_length" if self.pad_to_max else True,
                               truncation=True, max_length=self.max_length,
                               return_tensors="pt")

    def _texts_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tokenize(texts)
        if self._onnx_text is not None:
            from indexer.models.clip.onnx_towers import run

            return l2_normalize(run(self._onnx_text, {k: enc[k] for k in self._text_names}))
        # what the checkpoint's own tokenizer returns (SigLIP's returns no attention mask)
        kw = {k: v.to(self.device) for k, v in enc.items() if k in TEXT_NAMES}
        with torch.inference_mode():
            out = _features(self._model.get_text_features(**kw))
        return l2_normalize(out.float().cpu().numpy())

    def _images_batch(self, images: list[Image.Image]) -> np.ndarray:
        import torch

        px = self._image_processor(images=[im.convert("RGB") for im in images],
                                   return_tensors="pt")
        if self._onnx_image is not None:
            from indexer.models.clip.onnx_towers import run

            return l2_normalize(run(self._onnx_image, {"pixel_values": px["pixel_values"]}))
        kw = {k: v.to(self.device) for k, v in px.items()}
        if "pixel_values" in kw and kw["pixel_values"].is_floating_point():
            kw["pixel_values"] = kw["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = _features(self._model.get_image_features(**kw))
        return l2_normalize(out.float().cpu().numpy())

    def _batched(self, items: Sequence[Any], fn: Any) -> np.ndarray:
        self.load()
        if not items:
            return np.zeros((0, self.dim), np.float32)
        bs = max(1, int(self.settings.batch_size))
        with self._lock:
            parts = [fn(list(items[s:s + bs])) for s in range(0, len(items), bs)]
        return np.concatenate(parts).astype(np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """float32[n, d], L2-normalised; texts longer than the model's context are cut."""
        return self._batched([t if t.strip() else " " for t in texts], self._texts_batch)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """float32[n, d], L2-normalised, through the checkpoint's own image processor."""
        return self._batched(images, self._images_batch)

    def close(self) -> None:
        """Drop the weights (the next call loads them again)."""
        with self._lock:
            self._model = self._onnx_image = self._onnx_text = None
        if self.device is not None and self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
