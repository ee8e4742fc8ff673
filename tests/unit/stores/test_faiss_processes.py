"""Several processes on one FAISS directory: writes are serialised by the writer lock and
none is lost; a reader sees another process's flushed writes without reopening."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np

from indexer.settings import VectorSettings
from indexer.stores.faiss_store import FaissVectorStore
from indexer.stores.vectors import VectorPoint

SPACES = {"semantic": 8}
SETTINGS = VectorSettings(hnsw_m=8, hnsw_ef_construction=40, hnsw_ef_search=32)


def _points(prefix: str, n: int, seed: int) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    return [VectorPoint(id=f"{prefix}-{i}", vectors={"semantic": rng.normal(size=8)},
                        payload={"media_id": f"{prefix}-m{i}", "tenant": "t"})
            for i in range(n)]


def _writer(root: str, prefix: str, rounds: int, seed: int) -> None:
    store = FaissVectorStore(Path(root), "c", SPACES, SETTINGS, writer_wait_s=60)
    pts = _points(prefix, rounds * 5, seed)
    for r in range(rounds):
        store.upsert(pts[r * 5:(r + 1) * 5])
        store.flush()  # each flush lets the other writer in
    store.close()


def test_two_writer_processes_lose_nothing(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), name, 8, seed))
             for seed, name in enumerate(("a", "b", "c"))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    assert store.count() == 3 * 8 * 5
    assert {i.split("-")[0] for i in store.ids()} == {"a", "b", "c"}
    store.close()


def test_reader_sees_another_process_flush_and_writer_catches_up(tmp_path: Path) -> None:
    reader = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)  # e.g. the server
    assert reader.count() == 0
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_writer, args=(str(tmp_path), "cli", 2, 7))  # e.g. glimpse ingest
    p.start()
    p.join(120)
    assert p.exitcode == 0
    q = _points("cli", 10, 7)[3]
    hits = reader.search("semantic", q.vectors["semantic"], 1)
    assert hits and hits[0].id == "cli-3"  # no restart, no reindex
    # now the reader writes too: it must write on top of the other's generation
    reader.upsert(_points("srv", 4, 9))
    reader.close()
    again = FaissVectorStore(tmp_path, "c", SPACES, SETTINGS)
    assert again.count() == 14
    again.close()
