"""Vector retrieval benchmark: latency, recall@10, build time and memory of the adapters.

Data: a gaussian mixture on the unit sphere (cluster centres uniform on the sphere, points
= centre + isotropic noise, renormalised; intra-cluster cosine about 0.7), which is closer
to real embedding clouds than uniform noise. Queries are fresh samples of the same mixture.
Every point gets one of `tenants` tenants uniformly (a tenant filter keeps 1/tenants).

Per size and adapter: build time (upsert of all points + flush), retrieval latency
p50/p95 in ms for one query at a time (k=10) without and with a tenant filter, recall@10
against exact brute force (numpy, on the same filtered set), RSS after build and peak RSS.
FAISS at every size; Qdrant local mode (brute force in Python) only at sizes <= 10k, on
tmpfs when /dev/shm exists (local mode fsyncs sqlite once per point).

`python -m bench.vectors [--sizes 10000,100000] [--queries 200]` prints JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.settings import VectorSettings
from indexer.stores.vectors import VectorFilter, VectorPoint, VectorStore, point_id

log = logging.getLogger(__name__)

K = 10
QDRANT_MAX = 10_000


def _rss_mb() -> float:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except Exception:  # pragma: no cover - psutil is a dependency, but stay runnable
        return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def mixture(
    n: int, dim: int, rng: np.random.Generator, centres: np.ndarray, noise: float = 1.0
) -> np.ndarray:
    """n unit vectors from a gaussian mixture around unit `centres`."""
    which = rng.integers(0, centres.shape[0], size=n)
    x = centres[which] + rng.normal(scale=noise / np.sqrt(dim), size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _centres(n_clusters: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    c = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def exact_topk(
    xb: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None
) -> list[set[int]]:
    out = []
    for q in queries:
        s = xb @ q
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        top = np.argpartition(-s, k)[:k]
        out.append({int(i) for i in top})
    return out


def _pct(ms: Sequence[float], prefix: str = "") -> dict[str, float]:
    a = np.asarray(ms)
    return {
        f"{prefix}p50_ms": round(float(np.percentile(a, 50)), 3),
        f"{prefix}p95_ms": round(float(np.percentile(a, 95)), 3),
        f"{prefix}mean_ms": round(float(a.mean()), 3),
    }


def _measure(
    store: VectorStore,
    xq: np.ndarray,
    truth: list[set[int]],
    slot_of: dict[str, int],
    flt: VectorFilter | None,
    flt_tenants: list[str] | None,
) -> dict[str, Any]:
    lat, cpu, rec = [], [], []
    for i, q in enumerate(xq):
        f = VectorFilter(tenant=flt_tenants[i]) if flt_tenants is not None else flt
        t0, c0 = time.perf_counter(), time.thread_time()
        hits = store.search("text", q, K, f)
        cpu.append((time.thread_time() - c0) * 1000)
        lat.append((time.perf_counter() - t0) * 1000)
        got = {slot_of[h.id] for h in hits}
        rec.append(len(got & truth[i]) / K)
    # wall latency (what a caller sees) and the calling thread's CPU time (robust to other
    # load on the machine; faiss answers a single query on the calling thread)
    return {**_pct(lat), **_pct(cpu, "cpu_"), "recall_at_10": round(float(np.mean(rec)), 4)}


def _bench_one(
    backend: str,
    xb: np.ndarray,
    xq: np.ndarray,
    tenants: np.ndarray,
    q_tenants: list[str],
    truth_all: list[set[int]],
    truth_tenant: list[set[int]],
    settings: VectorSettings,
    workdir: Path,
) -> dict[str, Any]:
    n = xb.shape[0]
    ids = [point_id(f"m{i}", "v0") for i in range(n)]
    slot_of = {pid: i for i, pid in enumerate(ids)}
    rss0 = _rss_mb()
    store: VectorStore
    t0, c0 = time.perf_counter(), time.process_time()
    if backend == "faiss":
        from indexer.stores.faiss_store import FaissVectorStore

        store = FaissVectorStore(workdir, "bench", {"text": xb.shape[1]}, settings)
    else:
        from indexer.stores.qdrant_store import QdrantVectorStore

        store = QdrantVectorStore("bench", {"text": xb.shape[1]}, settings, workdir)
    batch = 1000
    for s in range(0, n, batch):
        store.upsert([
            VectorPoint(ids[i], {"text": xb[i]},
                        {"media_id": f"m{i}", "view_id": "v0", "tenant": str(tenants[i]),
                         "kind": "image", "t_start": None, "t_end": None})
            for i in range(s, min(n, s + batch))
        ])
    store.flush()
    build_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - c0
    rss_built = _rss_mb()
    # warm-up (first query allocates visited tables etc.)
    for q in xq[:5]:
        store.search("text", q, K)
    res = {
        "backend": backend,
        "n": n,
        "build_s": round(build_s, 2),
        "build_points_per_s": round(n / build_s, 1),
        "build_cpu_s": round(build_cpu_s, 2),
        "rss_after_build_mb": round(rss_built, 1),
        "rss_growth_mb": round(rss_built - rss0, 1),
        "unfiltered": _measure(store, xq, truth_all, slot_of, None, None),
        "tenant_filter": _measure(store, xq, truth_tenant, slot_of, None, q_tenants),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    store.close()
    return res


def bench_vectors(
    sizes: Sequence[int] = (10_000, 100_000),
    dim: int = 384,
    queries: int = 200,
    *,
    tenants: int = 10,
    clusters: int = 256,
    seed: int = 0,
    settings: VectorSettings | None = None,
    qdrant: bool = True,
) -> dict[str, Any]:
    settings = settings or VectorSettings()
    rng = np.random.default_rng(seed)
    centres = _centres(clusters, dim, rng)
    xq = mixture(queries, dim, rng, centres)
    q_tenants = [f"t{int(t)}" for t in rng.integers(0, tenants, size=queries)]
    out: dict[str, Any] = {
        "dim": dim,
        "queries": queries,
        "k": K,
        "tenants": tenants,
        "clusters": clusters,
        "hnsw": {"m": settings.hnsw_m, "ef_construction": settings.hnsw_ef_construction,
                 "ef_search": settings.hnsw_ef_search},
        "cpus": os.cpu_count(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "runs": [],
    }
    for n in sizes:
        data_rng = np.random.default_rng(seed + n)
        xb = mixture(n, dim, data_rng, centres)
        tenant_of = np.array([f"t{int(t)}" for t in data_rng.integers(0, tenants, size=n)])
        truth_all = exact_topk(xb, xq, K, None)
        truth_tenant = [
            exact_topk(xb, xq[i : i + 1], K, tenant_of == q_tenants[i])[0]
            for i in range(queries)
        ]
        backends = ["faiss"] + (["qdrant-local"] if qdrant and n <= QDRANT_MAX else [])
        for backend in backends:
            shm = Path("/dev/shm")
            base = shm if backend == "qdrant-local" and os.access(shm, os.W_OK) else None
            workdir = Path(tempfile.mkdtemp(prefix="glimpse-bench-vec-", dir=base))
            try:
                log.info("bench vectors: %s n=%d", backend, n)
                run = _bench_one(
                    "faiss" if backend == "faiss" else "qdrant", xb, xq, tenant_of, q_tenants,
                    truth_all, truth_tenant, settings, workdir,
                )
                run["backend"] = backend
                run["disk_mb"] = round(
                    sum(p.stat().st_size for p in workdir.rglob("*") if p.is_file()) / 2**20, 1
                )
                out["runs"].append(run)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
                gc.collect()
        del xb
    return out


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--m", type=int, default=None, help="override hnsw_m")
    ap.add_argument("--ef-search", type=int, default=None)
    ap.add_argument("--ef-construction", type=int, default=None)
    ap.add_argument("--no-qdrant", action="store_true")
    args = ap.parse_args(argv)
    base = VectorSettings()
    settings = VectorSettings(
        hnsw_m=args.m or base.hnsw_m,
        hnsw_ef_search=args.ef_search or base.hnsw_ef_search,
        hnsw_ef_construction=args.ef_construction or base.hnsw_ef_construction,
    )
    sizes = [int(s) for s in args.sizes.split(",") if s]
    result = bench_vectors(sizes, args.dim, args.queries, settings=settings,
                           qdrant=not args.no_qdrant)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
