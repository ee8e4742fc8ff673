"""FAISS adapter of the vector store port: the embedded default.

One `IndexHNSWFlat` (inner product on L2-normalised vectors = cosine) per named space.
FAISS labels are dense slot numbers (0..ntotal-1); a slot maps to a point id. HNSW cannot
remove vectors, so re-upserting or deleting a point tombstones its old slots and the index
is rebuilt from its own storage (`_compact`) once tombstones pass `compact_fraction`.

Filtering is done *inside* the search: a bitmap of live, matching slots is handed to
`_SearchParametersHNSW(sel=IDSelectorBitmap)`. Faiss still walks the whole graph
(non-matching nodes stay usable as stepping stones) but only admits matching slots to the
result heap, so a result can never be a non-matching point. Over-fetch-and-discard would
need an unbounded number of retries for selective filters; the selector needs none.
Guards keep "k results when k match": match sets smaller than the work HNSW would do
(about efSearch * M distances, at least 2048) are scored exactly on the index's own flat
storage with the same bitmap selector; otherwise efSearch grows with sqrt(1/selectivity);
if HNSW still returns fewer than min(k, matches) hits the query falls back to exact.

Persistence: `directory/name/CURRENT` names a generation folder `gen-NNNNNN/` that holds one
`.faiss` file per space, `state.json` (payloads and slot -> id maps) and `meta.json`. A flush
writes a whole new generation into a temporary folder, fsyncs it, renames it, then replaces
`CURRENT` atomically; a crash at any point leaves the previous generation in force.

Thread safety: one re-entrant lock around every public method (the API searches while the
in-process runner ingests).

Several processes on one directory (a `glimpse serve` and a `glimpse ingest`, say): writes
are serialised by an exclusive `flock` on `directory/name/WRITER.lock`. A store takes it at
its first mutation, reloads the latest generation first if another process flushed one
since this store read its own, and releases it when the flush has written everything
(dirty implies locked, so no write is ever made on a stale copy and none is lost). A store
that holds no unflushed changes re-reads `CURRENT` before each read and reloads when another
process has moved it, so a server sees what a CLI ingest wrote as soon as it is flushed. The
lock dies with its process: a crashed writer never leaves a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.errors import InvalidRequest, StoreUnavailable, VectorSpaceMismatch
from indexer.settings import VectorSettings
from indexer.stores.vectors import VectorFilter, VectorHit, VectorPoint, check_vector

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_FILTER_FIELDS = ("tenant", "kind", "media_id")
_MAX_EF = 4096
_GPU_MAX_K = 2048  # faiss GPU flat search limit on k
# the bundled type stubs lack the HNSW search parameters; the runtime has them (faiss>=1.7.3)
_SearchParametersHNSW: Any = faiss.SearchParametersHNSW  # type: ignore[attr-defined]
_SearchParameters: Any = faiss.SearchParameters


def _gpu_count() -> int:
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # faiss-cpu builds may lack the symbol
        return 0


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _normalise(vec: np.ndarray, dim: int, what: str) -> np.ndarray:
    arr = check_vector(vec, dim, what)
    norm = float(np.linalg.norm(arr))
    return arr / norm if norm > 0 else arr.copy()


class _Column:
    """A growable int32/bool numpy column (amortised O(1) append)."""

    def __init__(self, dtype: type, fill: Any) -> None:
        self._dtype = dtype
        self._fill = fill
        self._data: np.ndarray = np.full(64, fill, dtype=dtype)
        self.size = 0

    def extend(self, values: Sequence[Any]) -> None:
        need = self.size + len(values)
        if need > self._data.shape[0]:
            cap = max(need, 2 * self._data.shape[0])
            grown: np.ndarray = np.full(cap, self._fill, dtype=self._dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = values
        self.size = need

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]


class _Space:
    """One HNSW index and its slot bookkeeping."""

    def __init__(self, dim: int, index: Any) -> None:
        self.dim = dim
        self.index: Any = index  # faiss.IndexHNSWFlat
        self.labels: list[str | None] = []  # slot -> point id, None = tombstone
        self.slot_of: dict[str, int] = {}
        self.alive = _Column(np.bool_, False)
        self.codes = {f: _Column(np.int32, -1) for f in _FILTER_FIELDS}
        self.dead = 0
        self.gpu: Any = None  # optional GPU flat mirror, same slots

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def storage(self) -> np.ndarray:
        """Zero-copy view of the flat storage (valid until the next add; hold the lock)."""
        flat: Any = faiss.downcast_index(self.index.storage)
        n = self.ntotal
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim)


class FaissVectorStore:
    def __init__(
        self,
        directory: Path,
        name: str,
        spaces: dict[str, int],
        settings: VectorSettings,
        *,
        compact_fraction: float = 0.2,
        exact_below: int | None = None,
        use_gpu: bool | None = None,
        writer_wait_s: float = 120.0,
    ) -> None:
        if not spaces:
            raise InvalidRequest("a vector store needs at least one space")
        self.name = name
        self.spaces = dict(spaces)
        self._settings = settings
        self._root = Path(directory) / name
        self._lock = threading.RLock()
        self._compact_fraction = compact_fraction
        self._exact_below = exact_below
        self._payloads: dict[str, dict[str, Any]] = {}
        self._codebook: dict[str, dict[str, int]] = {f: {} for f in _FILTER_FIELDS}
        self._dirty = False
        self._closed = False
        self._gpu_res: Any = None
        if use_gpu is None:
            use_gpu = _gpu_count() > 0
        if use_gpu and hasattr(faiss, "StandardGpuResources"):
            self._gpu_res = faiss.StandardGpuResources()
            log.info("faiss store %s: mirroring vectors on GPU for search", name)
        self._spaces: dict[str, _Space] = {}
        self._root.mkdir(parents=True, exist_ok=True)
        self._writer_wait_s = writer_wait_s
        self._lock_fd: int | None = None  # WRITER.lock, held while this store has changes
        self._generation: str | None = None  # the CURRENT this store's state came from
        self._reload()

    def _reload(self) -> None:
        self._payloads = {}
        self._codebook = {f: {} for f in _FILTER_FIELDS}
        self._spaces = {}
        for attempt in range(3):
            try:
                loaded = self._load()
                break
            except FileNotFoundError:  # a writer replaced that generation while we read it
                if attempt == 2:
                    raise
                self._payloads, self._spaces = {}, {}
                self._codebook = {f: {} for f in _FILTER_FIELDS}
                time.sleep(0.05)
        if not loaded:
            self._generation = None
            for space, dim in self.spaces.items():
                self._spaces[space] = _Space(dim, self._new_index(dim))

    # ------------------------------------------------------- several processes

    def _read_current(self) -> str | None:
        try:
            return (self._root / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _begin_write(self) -> None:
        """Take the writer lock (call with self._lock held) and catch up with whatever
        another process flushed since this store last read the directory."""
        if self._lock_fd is not None:
            return
        fd = os.open(self._root / "WRITER.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self._writer_wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise StoreUnavailable(
                        f"the vector index at {self._root} is being written by another "
                        f"process (pid {holder or '?'}) and stayed locked for "
                        f"{self._writer_wait_s:.0f}s", retry_after=10) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        if self._read_current() != self._generation:
            log.info("faiss store %s: another process flushed %s; reloading before writing",
                     self.name, self._read_current())
            self._reload()

    def _end_write(self) -> None:
        """Release the writer lock once nothing is left unflushed."""
        if self._lock_fd is None or self._dirty:
            return
        fd, self._lock_fd = self._lock_fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __del__(self) -> None:  # a store dropped unclosed still gives the lock back
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _catch_up(self) -> None:
        """Before a read: reload if another process flushed a newer generation."""
        if self._lock_fd is None and not self._dirty and \
                self._read_current() != self._generation:
            self._reload()

    # ------------------------------------------------------------------ helpers

    def _new_index(self, dim: int) -> Any:
        index = faiss.IndexHNSWFlat(dim, self._settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._settings.hnsw_ef_construction
        index.hnsw.efSearch = self._settings.hnsw_ef_search
        return index

    def _code(self, field: str, value: Any, *, create: bool) -> int:
        if value is None:
            return -1
        book = self._codebook[field]
        key = str(value)
        code = book.get(key)
        if code is None:
            if not create:
                return -2  # matches nothing (-1 is "absent")
            code = len(book)
            book[key] = code
        return code

    def _space(self, space: str) -> _Space:
        try:
            return self._spaces[space]
        except KeyError:
            raise VectorSpaceMismatch(
                f"collection {self.name} has no space {space!r} (spaces: {sorted(self.spaces)})"
            ) from None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"vector store {self.name} is closed")

    def _kill(self, sp: _Space, slot: int) -> None:
        pid = sp.labels[slot]
        if pid is None:
            return
        sp.labels[slot] = None
        sp.alive.view[slot] = False
        sp.slot_of.pop(pid, None)
        sp.dead += 1

    def _append(self, sp: _Space, ids: list[str], vecs: np.ndarray) -> None:
        start = sp.ntotal
        sp.index.add(vecs)
        if sp.gpu is not None:
            sp.gpu.add(vecs)
        sp.labels.extend(ids)
        sp.alive.extend([True] * len(ids))
        for f in _FILTER_FIELDS:
            sp.codes[f].extend(
                [self._code(f, self._payloads[i].get(f), create=True) for i in ids]
            )
        for off, pid in enumerate(ids):
            sp.slot_of[pid] = start + off

    def _attach_gpu(self, sp: _Space) -> None:
        if self._gpu_res is None:
            return
        mirror = faiss.GpuIndexFlatIP(self._gpu_res, sp.dim)
        if sp.ntotal:
            mirror.add(np.ascontiguousarray(sp.storage()))
        sp.gpu = mirror

    def _compact(self, space: str, sp: _Space) -> None:
        """Rebuild the index from its live vectors (drops tombstones, renumbers slots)."""
        live = np.flatnonzero(sp.alive.view)
        vecs = np.ascontiguousarray(sp.storage()[live])
        ids = [sp.labels[int(s)] for s in live]
        log.info(
            "faiss store %s/%s: compacting %d live of %d slots", self.name, space,
            len(ids), sp.ntotal,
        )
        fresh = _Space(sp.dim, self._new_index(sp.dim))
        self._attach_gpu(fresh)
        if ids:
            self._append(fresh, [i for i in ids if i is not None], vecs)
        self._spaces[space] = fresh

    def _maybe_compact(self, space: str, sp: _Space) -> None:
        if sp.dead and sp.dead > self._compact_fraction * sp.ntotal:
            self._compact(space, sp)

    # --------------------------------------------------------------------- port

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        # validate everything before touching state: a bad point rejects the whole batch
        latest: dict[str, VectorPoint] = {}
        for p in points:
            latest[p.id] = p  # the last of duplicated ids wins
        prepared: dict[str, dict[str, np.ndarray]] = {}
        for p in latest.values():
            vecs: dict[str, np.ndarray] = {}
            for space, vec in p.vectors.items():
                sp_dim = self.spaces.get(space)
                if sp_dim is None:
                    raise VectorSpaceMismatch(
                        f"point {p.id}: collection {self.name} has no space {space!r}"
                    )
                vecs[space] = _normalise(vec, sp_dim, f"point {p.id}, space {space}")
            prepared[p.id] = vecs
        if not prepared:
            return
        with self._lock:
            self._check_open()
            self._begin_write()
            for pid, p in latest.items():
                for sp in self._spaces.values():
                    old = sp.slot_of.get(pid)
                    if old is not None:
                        self._kill(sp, old)
                self._payloads[pid] = dict(p.payload)
            for space, sp in self._spaces.items():
                ids = [pid for pid, v in prepared.items() if space in v]
                if ids:
                    block = np.stack([prepared[i][space] for i in ids]).astype(np.float32)
                    self._append(sp, ids, block)
                self._maybe_compact(space, sp)
            self._dirty = True

    def search(
        self, space: str, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        dim = self.spaces.get(space)
        if dim is None:
            raise VectorSpaceMismatch(f"collection {self.name} has no space {space!r}")
        q = _normalise(vector, dim, f"query on space {space}")
        if k <= 0:
            return []
        with self._lock:
            self._check_open()
            self._catch_up()
            sp = self._space(space)
            n = sp.ntotal
            if n == 0:
                return []
            mask = self._mask(sp, flt)
            if mask is None:
                matches = n
            else:
                matches = int(np.count_nonzero(mask))
                if matches == 0:
                    return []
            want = min(k, matches)
            ef = self._filtered_ef(k, n, matches)
            if mask is not None and self._prefer_exact(matches, ef):
                slots, scores = self._exact(sp, q, want, mask)
            elif sp.gpu is not None:
                slots, scores = _overfetch(
                    lambda kk: sp.gpu.search(q[None, :], kk), want, mask, n, _GPU_MAX_K
                )
                if len(slots) < want:
                    slots, scores = self._hnsw(sp, q, want, mask, ef)
            else:
                slots, scores = self._hnsw(sp, q, want, mask, ef)
            if len(slots) < want:
                # the graph could not reach enough matching nodes: answer exactly
                log.debug("faiss %s/%s: HNSW returned %d < %d, exact fallback",
                          self.name, space, len(slots), want)
                slots, scores = self._exact(sp, q, want, mask)
            hits = []
            for slot, score in zip(slots, scores, strict=True):
                pid = sp.labels[int(slot)]
                if pid is None:  # cannot happen: dead slots are never selected
                    continue
                hits.append(VectorHit(id=pid, score=float(score),
                                      payload=dict(self._payloads[pid])))
            return hits

    def _mask(self, sp: _Space, flt: VectorFilter | None) -> np.ndarray | None:
        """Boolean mask of eligible slots, or None when every slot is eligible."""
        has_filter = flt is not None and (
            flt.tenant is not None or flt.kinds is not None or flt.media_ids is not None
            or bool(flt.extra)
        )
        if not has_filter and sp.dead == 0:
            return None
        mask = sp.alive.view.copy()
        if flt is None:
            return mask
        if flt.tenant is not None:
            mask &= sp.codes["tenant"].view == self._code("tenant", flt.tenant, create=False)
        if flt.kinds is not None:
            kc = [self._code("kind", v, create=False) for v in flt.kinds]
            mask &= np.isin(sp.codes["kind"].view, np.asarray(kc, dtype=np.int32))
        if flt.media_ids is not None:
            mc = [self._code("media_id", v, create=False) for v in flt.media_ids]
            mask &= np.isin(sp.codes["media_id"].view, np.asarray(mc, dtype=np.int32))
        if flt.extra:
            for slot in np.flatnonzero(mask):
                pid = sp.labels[int(slot)]
                if pid is None or not flt.matches(self._payloads[pid]):
                    mask[slot] = False
        return mask

    def _filtered_ef(self, k: int, n: int, matches: int) -> int:
        # a filter leaves fewer admissible nodes per visited node: widen the beam. Measured
        # on clustered 384-d data, sqrt(1/selectivity) keeps recall@10 >= 0.99 where
        # 1/selectivity costs 3-4x more for no gain.
        ef = max(self._settings.hnsw_ef_search, k)
        return min(_MAX_EF, math.ceil(ef * math.sqrt(n / max(matches, 1))))

    def _prefer_exact(self, matches: int, ef: int) -> bool:
        if self._exact_below is not None:
            return matches <= self._exact_below
        # HNSW evaluates roughly ef * M distances; exact scoring of the matches costs
        # `matches` distances and is always right
        return matches <= max(2048, ef * self._settings.hnsw_m)

    def _exact(
        self, sp: _Space, q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Brute force over the index's own flat storage, restricted by the bitmap (faiss
        scores only selected vectors, no copy)."""
        flat: Any = faiss.downcast_index(sp.index.storage)
        if mask is None:
            dist, lab = flat.search(q[None, :], k)
        else:
            bits = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(sp.ntotal, faiss.swig_ptr(bits))
            dist, lab = flat.search(q[None, :], k, params=_SearchParameters(sel=sel))
            del sel, bits
        ok = lab[0] >= 0
        return lab[0][ok], dist[0][ok]

    def _hnsw(
        self, sp: _Space, q: np.ndarray, k: int, mask: np.ndarray | None, ef: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = sp.ntotal
        if mask is None:
            params = _SearchParametersHNSW(efSearch=max(self._settings.hnsw_ef_search, k))
            dist, lab = sp.index.search(q[None, :], k, params=params)
        else:
            bits = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
            params = _SearchParametersHNSW(sel=sel, efSearch=ef)
            dist, lab = sp.index.search(q[None, :], k, params=params)
            del sel, bits  # the bitmap must outlive the search call
        ok = lab[0] >= 0
        return lab[0][ok], dist[0][ok]

    def delete_media(self, media_id: str) -> int:
        with self._lock:
            self._check_open()
            self._begin_write()
            doomed = [pid for pid, p in self._payloads.items() if p.get("media_id") == media_id]
            for pid in doomed:
                for sp in self._spaces.values():
                    slot = sp.slot_of.get(pid)
                    if slot is not None:
                        self._kill(sp, slot)
                del self._payloads[pid]
            if doomed:
                for space, sp in list(self._spaces.items()):
                    self._maybe_compact(space, sp)
                self._dirty = True
            self._end_write()
            return len(doomed)

    def count(self) -> int:
        with self._lock:
            self._catch_up()
            return len(self._payloads)

    def ids(self) -> set[str]:
        with self._lock:
            self._catch_up()
            return set(self._payloads)

    def stats(self) -> dict[str, dict[str, int]]:
        """Slots, live and dead per space (for diagnostics and tests)."""
        with self._lock:
            return {
                s: {"slots": sp.ntotal, "live": sp.ntotal - sp.dead, "dead": sp.dead}
                for s, sp in self._spaces.items()
            }

    def compact(self) -> None:
        with self._lock:
            self._check_open()
            self._begin_write()
            for space, sp in list(self._spaces.items()):
                if sp.dead:
                    self._compact(space, sp)
                    self._dirty = True
            self._end_write()

    # -------------------------------------------------------------- persistence

    def _space_file(self, i: int) -> str:
        return f"space{i}.faiss"

    def flush(self) -> None:
        with self._lock:
            self._check_open()
            if self._dirty:
                self._write_generation()
                self._dirty = False
            self._end_write()

    def _current_generation(self) -> int:
        cur = self._root / "CURRENT"
        if not cur.exists():
            return 0
        return int(cur.read_text().strip().removeprefix("gen-"))

    def _write_generation(self) -> None:
        gen = self._current_generation() + 1
        final = self._root / f"gen-{gen:06d}"
        tmp = self._root / f".gen-{gen:06d}.tmp-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        if final.exists():  # left by a crash after the rename but before CURRENT moved
            shutil.rmtree(final)
        tmp.mkdir()
        order = sorted(self._spaces)
        state = {
            "payloads": self._payloads,
            "slots": {s: self._spaces[s].labels for s in order},
        }
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "spaces": {s: self._spaces[s].dim for s in order},
            "files": {s: self._space_file(i) for i, s in enumerate(order)},
            "ntotal": {s: self._spaces[s].ntotal for s in order},
            "count": len(self._payloads),
            "hnsw_m": self._settings.hnsw_m,
        }
        for s in order:
            target = tmp / meta["files"][s]
            faiss.write_index(self._spaces[s].index, str(target))
            with open(target, "rb+") as fh:
                os.fsync(fh.fileno())
        _write_bytes(tmp / "state.json", json.dumps(state, default=str).encode())
        _write_bytes(tmp / "meta.json", json.dumps(meta, indent=1).encode())
        _fsync_dir(tmp)
        os.replace(tmp, final)
        cur_tmp = self._root / f".CURRENT.tmp-{os.getpid()}"
        _write_bytes(cur_tmp, f"gen-{gen:06d}\n".encode())
        os.replace(cur_tmp, self._root / "CURRENT")
        _fsync_dir(self._root)
        self._generation = final.name
        keep = {final.name, f"gen-{gen - 1:06d}"}  # a reader may still be loading the last one
        for old in self._root.iterdir():
            if old.name not in keep and (old.name.startswith("gen-") or ".tmp-" in old.name):
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
        log.debug("faiss store %s: wrote generation %d (%d points)", self.name, gen,
                  len(self._payloads))

    def _load(self) -> bool:
        cur = self._root / "CURRENT"
        if not cur.exists():
            return False
        gen_name = cur.read_text().strip()
        gen_dir = self._root / gen_name
        meta = json.loads((gen_dir / "meta.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise VectorSpaceMismatch(
                f"{gen_dir} has format {meta.get('format')}, this version reads {FORMAT_VERSION}"
            )
        stored = {k: int(v) for k, v in meta["spaces"].items()}
        if stored != self.spaces:
            raise VectorSpaceMismatch(
                f"collection {self.name} at {self._root} holds spaces {stored}, "
                f"asked for {self.spaces}; refusing to mix vectors of different models",
                detail={"stored": stored, "requested": self.spaces},
            )
        state = json.loads((gen_dir / "state.json").read_text())
        self._payloads = state["payloads"]
        for s, dim in stored.items():
            index: Any = faiss.read_index(str(gen_dir / meta["files"][s]))
            labels: list[str | None] = state["slots"][s]
            if index.ntotal != len(labels) or index.d != dim:
                raise VectorSpaceMismatch(
                    f"{gen_dir}: space {s} index has {index.ntotal}x{index.d}, "
                    f"state expects {len(labels)}x{dim}"
                )
            # read_index already returns the concrete IndexHNSWFlat (and owns it: do not
            # downcast into a second, non-owning proxy)
            index.hnsw.efSearch = self._settings.hnsw_ef_search
            sp = _Space(dim, index)
            sp.labels = labels
            sp.alive.extend([pid is not None for pid in labels])
            for f in _FILTER_FIELDS:
                sp.codes[f].extend([
                    -1 if pid is None
                    else self._code(f, self._payloads[pid].get(f), create=True)
                    for pid in labels
                ])
            sp.slot_of = {pid: i for i, pid in enumerate(labels) if pid is not None}
            sp.dead = len(labels) - len(sp.slot_of)
            self._attach_gpu(sp)
            self._spaces[s] = sp
        self._generation = gen_name
        log.info("faiss store %s: loaded %s (%d points)", self.name, gen_dir.name,
                 len(self._payloads))
        return True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            finally:
                self._dirty = False
                self._end_write()
                self._closed = True


def _overfetch(
    search: Callable[[int], tuple[np.ndarray, np.ndarray]],
    k: int,
    mask: np.ndarray | None,
    n: int,
    max_k: int,
    tries: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Search an index that cannot filter (GPU flat): ask for more, drop non-matching
    slots, double on shortfall; at most `tries` rounds and `max_k` candidates. The caller
    falls back to the filtered CPU path when this returns fewer than k."""
    if mask is None:
        fetch = min(k, n, max_k)
    else:
        frac = max(int(np.count_nonzero(mask)), 1) / max(n, 1)
        fetch = min(max_k, n, max(k, math.ceil(2 * k / frac)))
    for _ in range(tries):
        dist, lab = search(fetch)
        slots, scores = lab[0], dist[0]
        ok = slots >= 0
        if mask is not None:
            ok &= mask[np.where(ok, slots, 0)]
        slots, scores = slots[ok][:k], scores[ok][:k]
        if len(slots) >= k or fetch >= min(n, max_k):
            return slots, scores
        fetch = min(max_k, n, fetch * 2)
    return slots, scores
