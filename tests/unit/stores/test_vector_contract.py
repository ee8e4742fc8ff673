"""The vector store contract, asserted identically for every adapter.

Adapters: FAISS (default: small filtered sets answered exactly), FAISS with the exact path
disabled (every filtered query goes through the HNSW IDSelector), and Qdrant local mode.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from indexer.errors import VectorSpaceMismatch
from indexer.settings import Settings, VectorSettings
from indexer.stores.faiss_store import FaissVectorStore
from indexer.stores.qdrant_store import QdrantVectorStore
from indexer.stores.vector_factory import build_vector_store
from indexer.stores.vectors import (
    VectorFilter,
    VectorPoint,
    VectorStore,
    collection_name,
    point_id,
)

SPACES = {"text": 32, "image": 16}
N_MEDIA = 300
VIEWS = 4  # -> 1200 points
TENANTS = ["acme", "globex", "initech"]
KINDS = ["image", "frame", "page"]

Factory = Callable[..., VectorStore]


def _settings(backend: Literal["faiss", "qdrant"]) -> VectorSettings:
    # small graph parameters keep the tests fast; the contract must hold for any values
    return VectorSettings(backend=backend, hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=32)


@pytest.fixture
def qdrant_dir(tmp_path: Path) -> Iterator[Path]:
    """Qdrant local mode commits (fsyncs) sqlite once per point, ~20 ms each on a disk;
    on tmpfs the same code runs in milliseconds. Fall back to tmp_path without one."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="glimpse-qdrant-", dir=shm))
        yield d
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path / "qdrant"


@pytest.fixture(params=["faiss", "faiss-hnsw-filter", "qdrant-local"])
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, qdrant_dir: Path
) -> Iterator[Factory]:
    kind = request.param
    opened: list[VectorStore] = []

    def make(spaces: dict[str, int] = SPACES, name: str = "glimpse_test") -> VectorStore:
        store: VectorStore
        if kind == "faiss":
            store = FaissVectorStore(tmp_path / "faiss", name, spaces, _settings("faiss"))
        elif kind == "faiss-hnsw-filter":
            store = FaissVectorStore(
                tmp_path / "faiss", name, spaces, _settings("faiss"), exact_below=0
            )
        else:
            store = QdrantVectorStore(name, spaces, _settings("qdrant"), qdrant_dir)
        opened.append(store)
        return store

    yield make
    for s in opened:
        s.close()


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _dataset(seed: int = 7) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    n = N_MEDIA * VIEWS
    text, image = _unit(rng, n, SPACES["text"]), _unit(rng, n, SPACES["image"])
    points = []
    for i in range(n):
        media = f"m{i // VIEWS:04d}"
        view = f"v{i % VIEWS}"
        payload: dict[str, Any] = {
            "media_id": media,
            "view_id": view,
            "tenant": TENANTS[(i // VIEWS) % len(TENANTS)],
            "kind": KINDS[i % len(KINDS)],
            "t_start": float(i % VIEWS),
            "t_end": float(i % VIEWS + 1),
        }
        points.append(
            VectorPoint(point_id(media, view), {"text": text[i], "image": image[i]}, payload)
        )
    return points


@pytest.fixture(scope="module")
def points() -> list[VectorPoint]:
    return _dataset()


def _filled(make_store: Factory, points: list[VectorPoint]) -> VectorStore:
    store = make_store()
    for i in range(0, len(points), 200):
        store.upsert(points[i : i + 200])
    return store


def test_exact_neighbour_comes_first(make_store: Factory, points: list[VectorPoint]) -> None:
    store = _filled(make_store, points)
    assert store.count() == len(points)
    assert store.ids() == {p.id for p in points}
    for p in points[::60]:
        for space in SPACES:
            hits = store.search(space, p.vectors[space], 5)
            assert len(hits) == 5
            assert hits[0].id == p.id
            assert hits[0].score == pytest.approx(1.0, abs=1e-4)
            assert hits[0].payload["media_id"] == p.payload["media_id"]
            scores = [h.score for h in hits]
            assert scores == sorted(scores, reverse=True)


def test_reupsert_overwrites(make_store: Factory, points: list[VectorPoint]) -> None:
    store = _filled(make_store, points)
    rng = np.random.default_rng(99)
    victims = points[:40]
    fresh = [
        VectorPoint(
            p.id,
            {s: _unit(rng, 1, d)[0] for s, d in SPACES.items()},
            {**p.payload, "kind": "replaced"},
        )
        for p in victims
    ]
    store.upsert(fresh)
    store.upsert(fresh[:10])  # twice: still no duplicates
    assert store.count() == len(points)
    assert store.ids() == {p.id for p in points}
    for old, new in zip(victims[:10], fresh[:10], strict=True):
        hit = store.search("text", new.vectors["text"], 1)[0]
        assert hit.id == new.id
        assert hit.score == pytest.approx(1.0, abs=1e-4)
        assert hit.payload["kind"] == "replaced"
        # the old vector is gone: it no longer finds its point with similarity 1
        for h in store.search("text", old.vectors["text"], 3):
            assert not (h.id == old.id and h.score > 0.999)


def test_reupsert_many_times_stays_correct(make_store: Factory, points: list[VectorPoint]) -> None:
    """Enough overwrites to push FAISS past its tombstone threshold (compaction)."""
    store = _filled(make_store, points[:200])
    rng = np.random.default_rng(5)
    latest = {p.id: p for p in points[:200]}
    for _ in range(3):
        batch = [
            VectorPoint(p.id, {s: _unit(rng, 1, d)[0] for s, d in SPACES.items()}, p.payload)
            for p in points[:200]
        ]
        store.upsert(batch)
        latest.update({p.id: p for p in batch})
    assert store.count() == 200
    for p in list(latest.values())[::17]:
        hit = store.search("image", p.vectors["image"], 1)[0]
        assert hit.id == p.id
        assert hit.score == pytest.approx(1.0, abs=1e-4)


def test_delete_media(make_store: Factory, points: list[VectorPoint]) -> None:
    store = _filled(make_store, points)
    gone = points[0].payload["media_id"]
    gone_ids = {p.id for p in points if p.payload["media_id"] == gone}
    assert store.delete_media(gone) == VIEWS
    assert store.delete_media(gone) == 0
    assert store.delete_media("no-such-media") == 0
    assert store.count() == len(points) - VIEWS
    assert not (store.ids() & gone_ids)
    for p in points[:VIEWS]:
        hits = store.search("text", p.vectors["text"], 20)
        assert len(hits) == 20
        assert not ({h.id for h in hits} & gone_ids)


FILTERS = [
    VectorFilter(tenant="globex"),
    VectorFilter(kinds=["page"]),
    VectorFilter(kinds=["image", "frame"], tenant="acme"),
    VectorFilter(media_ids=["m0003", "m0010", "m0100", "m0299"]),  # 16 points
    VectorFilter(media_ids=["m0003", "m0010"], kinds=["image"]),  # a handful
    VectorFilter(tenant="initech", extra={"view_id": "v1"}),
]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: repr(f)[:60])
def test_filters_only_return_matches_and_fill_k(
    make_store: Factory, points: list[VectorPoint], flt: VectorFilter
) -> None:
    store = _filled(make_store, points)
    matching = [p for p in points if flt.matches(p.payload)]
    assert matching, "the filter must select something for this test to mean anything"
    k = 10
    rng = np.random.default_rng(3)
    queries = list(_unit(rng, 8, SPACES["text"])) + [points[0].vectors["text"]]
    for q in queries:
        hits = store.search("text", q, k, flt)
        assert len(hits) == min(k, len(matching))
        assert all(flt.matches(h.payload) for h in hits)
        # the best matching point is found (exact top-1 within the filtered set)
        best = max(matching, key=lambda p: float(p.vectors["text"] @ q))
        assert hits[0].id == best.id


def test_filter_matching_nothing(make_store: Factory, points: list[VectorPoint]) -> None:
    store = _filled(make_store, points)
    q = points[0].vectors["text"]
    assert store.search("text", q, 5, VectorFilter(tenant="nobody")) == []
    assert store.search("text", q, 5, VectorFilter(media_ids=[])) == []


def test_persistence_across_reopen(make_store: Factory, points: list[VectorPoint]) -> None:
    store = _filled(make_store, points)
    store.delete_media("m0001")
    store.flush()
    before_ids = store.ids()
    queries = [p.vectors["image"] for p in points[::97]]
    before = [[h.id for h in store.search("image", q, 5)] for q in queries]
    store.close()
    again = make_store()
    assert again.count() == len(before_ids)
    assert again.ids() == before_ids
    after = [[h.id for h in again.search("image", q, 5)] for q in queries]
    assert after == before
    # and it stays writable
    again.upsert(points[4:8])
    assert again.count() == len(before_ids) + 4


def test_dimension_mismatch_refused(make_store: Factory, points: list[VectorPoint]) -> None:
    store = _filled(make_store, points[:50])
    with pytest.raises(VectorSpaceMismatch):
        store.upsert([VectorPoint("x", {"text": np.ones(7, np.float32)}, {"media_id": "x"})])
    with pytest.raises(VectorSpaceMismatch):
        store.upsert([VectorPoint("x", {"audio": np.ones(32, np.float32)}, {"media_id": "x"})])
    with pytest.raises(VectorSpaceMismatch):
        store.search("text", np.ones(31, np.float32), 3)
    with pytest.raises(VectorSpaceMismatch):
        store.search("audio", np.ones(32, np.float32), 3)
    assert store.count() == 50  # nothing half-written
    store.close()
    with pytest.raises(VectorSpaceMismatch):
        make_store({"text": 64, "image": 16})
    with pytest.raises(VectorSpaceMismatch):
        make_store({"text": 32})
    assert make_store().count() == 50  # the refusal did not damage the collection


def test_concurrent_search_during_upsert(make_store: Factory, points: list[VectorPoint]) -> None:
    store = make_store()
    store.upsert(points[:100])
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        rng = np.random.default_rng(threading.get_ident() % 1000)
        try:
            while not stop.is_set():
                q = _unit(rng, 1, SPACES["text"])[0]
                hits = store.search("text", q, 5, VectorFilter(tenant="acme"))
                assert all(h.payload["tenant"] == "acme" for h in hits)
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(100, len(points), 50):
            store.upsert(points[i : i + 50])
        store.delete_media("m0002")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert store.count() == len(points) - VIEWS


@pytest.mark.parametrize("backend", ["faiss", "qdrant"])
def test_factory_names_collection_by_model(
    tmp_path: Path, backend: Literal["faiss", "qdrant"]
) -> None:
    settings = Settings(data_dir=tmp_path, vectors=_settings(backend))
    spaces = {"text": 8}
    a = build_vector_store(settings, "GLM-4.5V/base", spaces)
    try:
        assert a.name == collection_name("GLM-4.5V/base", spaces)
        assert "glm-4-5v-base" in a.name and "text8" in a.name
        a.upsert([VectorPoint(point_id("m", "v"), {"text": np.ones(8, np.float32)},
                              {"media_id": "m", "tenant": "t"})])
        a.flush()
        backend_type = FaissVectorStore if backend == "faiss" else QdrantVectorStore
        assert isinstance(a, backend_type)
        assert str(tmp_path / "vectors") in str(next(tmp_path.glob("vectors/*")))
    finally:
        a.close()
    b = build_vector_store(settings, "minilm-l6", spaces)
    try:
        assert b.name != a.name
        assert b.count() == 0  # another model never sees these vectors
    finally:
        b.close()
