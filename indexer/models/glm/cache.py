"""Per-view vision-feature cache: a bounded LRU keyed by (model_id, view_id).

A follow-up question over the same search results sends the same views again; the vision tower
(24 layers on GLM-4.5V, the largest per-image cost before the language model) need not run
twice. The cache wraps the model's `get_image_features`: for every image in a call whose view id
is known and whose pixels match the stored fingerprint, the stored merged features are reused;
only the misses go through the tower, in one batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    features: torch.Tensor
    grid: tuple[int, int, int]
    fingerprint: tuple[float, float, int]
    nbytes: int


def fingerprint(pixels: torch.Tensor) -> tuple[float, float, int]:
    flat = pixels.detach().reshape(-1).float()
    return (round(float(flat.sum()), 3), round(float(flat[::97].abs().sum()), 3), int(flat.numel()))


class VisionFeatureCache:
    def __init__(self, max_entries: int = 256, max_bytes: int = 2 << 30) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.tower_calls = 0
        self.tower_seconds = 0.0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: tuple[str, str], grid: tuple[int, int, int], fp: tuple[float, float, int]):
        with self._lock:
            e = self._items.get(key)
            if e is None or e.grid != grid or e.fingerprint != fp:
                return None
            self._items.move_to_end(key)
            return e.features

    def put(self, key: tuple[str, str], features: torch.Tensor, grid, fp) -> None:
        nbytes = features.numel() * features.element_size()
        if nbytes > self.max_bytes or self.max_entries <= 0:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._items[key] = _Entry(features.detach(), grid, fp, nbytes)
            self._bytes += nbytes
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, ev = self._items.popitem(last=False)
                self._bytes -= ev.nbytes
                self.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "entries": len(self._items),
            "bytes": self._bytes,
            "evictions": self.evictions,
            "tower_calls": self.tower_calls,
            "tower_seconds": round(self.tower_seconds, 4),
        }


class CachedImageFeatures:
    """Drop-in replacement for `Glm4v(Moe)Model.get_image_features`, installed on the instance.

    `view_ids` names the images of the next call(s) in order; set it with `expect(...)`.
    Without ids (or with a count that does not match) the call goes straight to the tower.
    """

    def __init__(
        self,
        original: Callable[..., Any],
        cache: VisionFeatureCache,
        model_id: str,
        spatial_merge_size: int,
        sync: Callable[[], None] | None = None,
    ) -> None:
        self.original = original
        self.cache = cache
        self.model_id = model_id
        self.merge2 = spatial_merge_size**2
        self.sync = sync or (lambda: None)
        self.view_ids: list[str | None] | None = None
        # per-call counters, reset by expect()
        self.call_hits = 0
        self.call_misses = 0
        self.call_tower_seconds = 0.0

    def expect(self, view_ids: list[str | None] | None) -> None:
        self.view_ids = list(view_ids) if view_ids is not None else None
        self.call_hits = self.call_misses = 0
        self.call_tower_seconds = 0.0

    def _tower(self, pixel_values: torch.Tensor, grid: torch.Tensor | None, **kwargs: Any) -> Any:
        self.sync()
        t0 = time.perf_counter()
        out = self.original(pixel_values, grid, **kwargs)
        self.sync()
        dt = time.perf_counter() - t0
        self.cache.tower_calls += 1
        self.cache.tower_seconds += dt
        self.call_tower_seconds += dt
        return out

    def __call__(
        self,
        pixel_values: torch.Tensor,
        image_grid_thw: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        ids = self.view_ids
        if image_grid_thw is None or ids is None or len(ids) != int(image_grid_thw.shape[0]):
            if ids is not None:
                log.debug(
                    "vision cache bypassed: %s ids for %s images",
                    len(ids),
                    None if image_grid_thw is None else image_grid_thw.shape[0],
                )
            return self._tower(pixel_values, image_grid_thw, **kwargs)
        kwargs.pop("return_dict", None)
        sizes = [int(g.prod()) for g in image_grid_thw]
        slices = torch.split(pixel_values, sizes, dim=0)
        feats: list[torch.Tensor | None] = []
        miss_idx: list[int] = []
        keys: list[
            tuple[tuple[str, str] | None, tuple[int, int, int], tuple[float, float, int]]
        ] = []
        for i, (vid, px, g) in enumerate(zip(ids, slices, image_grid_thw, strict=True)):
            grid = (int(g[0]), int(g[1]), int(g[2]))
            fp = fingerprint(px)
            key = (self.model_id, vid) if vid is not None else None
            keys.append((key, grid, fp))
            hit = self.cache.get(key, grid, fp) if key is not None else None
            if hit is not None:
                self.cache.hits += 1
                self.call_hits += 1
            else:
                self.cache.misses += 1
                self.call_misses += 1
                miss_idx.append(i)
            feats.append(hit)
        if miss_idx:
            px = torch.cat([slices[i] for i in miss_idx], dim=0)
            grid_t = image_grid_thw[miss_idx]
            out = self._tower(px, grid_t, return_dict=True, **kwargs)
            pooled = out.pooler_output
            if isinstance(pooled, torch.Tensor):
                pooled = torch.split(
                    pooled, [s // self.merge2 for s in (sizes[i] for i in miss_idx)]
                )
            for i, f in zip(miss_idx, pooled, strict=True):
                feats[i] = f
                key, grid, fp = keys[i]
                if key is not None:
                    self.cache.put(key, f, grid, fp)
        self.view_ids = None  # consumed: one call per expect()
        pooled_all: Any = tuple(f for f in feats if f is not None)  # the model splits per image
        return BaseModelOutputWithPooling(last_hidden_state=None, pooler_output=pooled_all)
