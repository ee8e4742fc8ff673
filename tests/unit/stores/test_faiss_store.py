"""FAISS-only behaviour: tombstones and compaction, crash-safe generations, over-fetch."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np
import pytest

from indexer.settings import VectorSettings
from indexer.stores.faiss_store import FaissVectorStore, _overfetch
from indexer.stores.vectors import VectorFilter, VectorPoint, point_id

SETTINGS = VectorSettings(hnsw_m=16, hnsw_ef_construction=64, hnsw_ef_search=32)
SPACES = {"text": 24}


def _points(n: int, seed: int, tenant_of=lambda i: "t") -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SPACES["text"])).astype(np.float32)
    return [
        VectorPoint(
            point_id(f"m{i}", "v0"),
            {"text": x[i]},
            {"media_id": f"m{i}", "view_id": "v0", "tenant": tenant_of(i), "kind": "image"},
        )
        for i in range(n)
    ]


def test_tombstones_trigger_compaction(tmp_path: Path) -> None:
    store = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS, compact_fraction=0.25)
    pts = _points(500, 1)
    store.upsert(pts)
    store.upsert(pts[:100])  # 100 dead of 600 slots: under the threshold
    assert store.stats()["text"] == {"slots": 600, "live": 500, "dead": 100}
    store.upsert(pts[100:200])  # 200 dead of 700 > 0.25 -> rebuilt
    assert store.stats()["text"] == {"slots": 500, "live": 500, "dead": 0}
    for p in pts[::50]:
        hit = store.search("text", p.vectors["text"], 1)[0]
        assert hit.id == p.id and hit.score == pytest.approx(1.0, abs=1e-4)
    store.close()


def test_vectors_are_normalised(tmp_path: Path) -> None:
    store = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    p = _points(1, 2)[0]
    store.upsert([VectorPoint(p.id, {"text": p.vectors["text"] * 37.0}, p.payload)])
    hit = store.search("text", p.vectors["text"] * 0.01, 1)[0]
    assert hit.score == pytest.approx(1.0, abs=1e-5)  # cosine, not raw inner product
    store.close()


def test_crash_during_flush_keeps_previous_generation(tmp_path: Path) -> None:
    store = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    pts = _points(300, 3)
    store.upsert(pts[:200])
    store.flush()
    store.upsert(pts[200:])

    # the process dies between writing the new generation and switching CURRENT to it
    real_replace = os.replace

    def dying_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "CURRENT":
            raise KeyboardInterrupt("simulated crash")
        real_replace(src, dst)

    os.replace = dying_replace  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            store.flush()
    finally:
        os.replace = real_replace  # type: ignore[assignment]
    del store  # never closed, like a killed process

    # also a torn file left by a crash mid-write
    (tmp_path / "c" / ".gen-000009.tmp-1").mkdir()
    (tmp_path / "c" / ".gen-000009.tmp-1" / "space0.faiss").write_bytes(b"\x00garbage")

    reopened = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    assert reopened.count() == 200
    assert reopened.ids() == {p.id for p in pts[:200]}
    reopened.upsert(pts[200:])
    reopened.close()  # and the next generation supersedes the debris
    final = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    assert final.count() == 300
    # the generation before the current one stays for a reader in another process that
    # may still be loading it; the torn debris is gone
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "CURRENT", "WRITER.lock", "gen-000001", "gen-000002"]
    final.close()


def test_selective_filter_through_hnsw_selector_keeps_recall(tmp_path: Path) -> None:
    """2% of points match; with the exact path off, the selector + widened beam must
    still return the true filtered top-10 for most queries."""
    store = FaissVectorStore(
        tmp_path, "c", SPACES, SETTINGS, exact_below=0
    )
    pts = _points(3000, 4, tenant_of=lambda i: "rare" if i % 50 == 0 else "common")
    store.upsert(pts)
    rare = [p for p in pts if p.payload["tenant"] == "rare"]
    xb = np.stack([p.vectors["text"] for p in rare])
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    rng = np.random.default_rng(9)
    recall = []
    for q in rng.normal(size=(30, SPACES["text"])).astype(np.float32):
        q /= np.linalg.norm(q)
        truth = {rare[i].id for i in np.argsort(-(xb @ q))[:10]}
        hits = store.search("text", q, 10, VectorFilter(tenant="rare"))
        assert len(hits) == 10 and all(h.payload["tenant"] == "rare" for h in hits)
        recall.append(len(truth & {h.id for h in hits}) / 10)
    assert float(np.mean(recall)) >= 0.95
    store.close()


def test_overfetch_filters_and_retries() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 8)).astype(np.float32)
    faiss.normalize_L2(x)
    flat = faiss.IndexFlatIP(8)
    flat.add(x)
    mask = np.zeros(1000, dtype=bool)
    mask[::100] = True  # 1% match
    calls: list[int] = []

    def search(kk: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append(kk)
        return flat.search(x[:1], kk)

    slots, scores = _overfetch(search, 5, mask, 1000, max_k=2048)
    assert len(slots) == 5 and mask[slots].all()
    assert list(slots) == list(np.flatnonzero(mask)[np.argsort(-(x[mask] @ x[0]))][:5])
    assert np.all(np.diff(scores) <= 0)
    assert len(calls) <= 4
    # capped: a tiny max_k cannot find enough, and says so by returning fewer
    slots, _ = _overfetch(search, 5, mask, 1000, max_k=20)
    assert len(slots) < 5


def test_search_on_empty_store(tmp_path: Path) -> None:
    store = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    assert store.search("text", np.ones(24, np.float32), 5) == []
    assert store.count() == 0 and store.ids() == set()
    store.close()
