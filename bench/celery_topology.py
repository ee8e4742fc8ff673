"""Ingest throughput: through the broker (real `glimpse worker` processes) against the
in-process runner, side by side, and the model queue's batching gain (batch 1 vs N).

Every run gets its own scratch data folder, its own Postgres database on the configured
server (created and dropped here) and its own broker key prefix, so a bench never touches
a real catalog, index or queue. Both topologies use the same catalog (Postgres) and vector
store (Qdrant local mode, owned by the one model worker), so the difference is the topology.
Throughput is images per second from the first enqueue to the last job `done`, with the
model already loaded (worker start-up is reported apart).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bench.ingest import CollectJobs
from indexer.context import Glimpse
from indexer.ingest import accept_path
from indexer.jobs import InProcessRunner
from indexer.settings import Settings

log = logging.getLogger(__name__)


def bench_celery(
    settings: Settings, n_images: int = 48, batch_sizes: tuple[int, ...] = (1, 8),
    *, quick: bool = False, timeout_s: float = 900.0,
) -> dict[str, Any]:
    """{"in_process": ..., "celery": {"batch_1": ..., "batch_8": ...}, "batching_gain"}.
    `quick`: 16 images. Needs Postgres (GLIMPSE_CATALOG__URL) and Redis
    (GLIMPSE_QUEUE__BROKER_URL, default redis://127.0.0.1:6379/0)."""
    if quick:
        n_images = min(n_images, 16)
    if not (settings.catalog.url or "").startswith("postgresql"):
        return {"skipped": "the celery bench needs GLIMPSE_CATALOG__URL pointing at Postgres "
                           "(it creates and drops its own databases there)"}
    broker = settings.queue.broker_url or "redis://127.0.0.1:6379/0"
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as tmp:
        images = _write_images(Path(tmp) / "images", n_images)
        out: dict[str, Any] = {"n_images": n_images, "model": settings.model.backend,
                               "ocr": settings.model.ocr, "vectors": "qdrant (local mode)",
                               "catalog": "postgres", "broker": "redis"}
        with _scratch(settings, Path(tmp) / "inproc", broker) as s:
            out["in_process"] = _run_in_process(s, images)
        runs: dict[str, Any] = {}
        for bs in batch_sizes:
            with _scratch(settings, Path(tmp) / f"celery-b{bs}", broker, batch_size=bs) as s:
                runs[f"batch_{bs}"] = _run_celery(s, images, timeout_s)
        out["celery"] = runs
        base = out["in_process"]["images_per_s"]
        for r in runs.values():
            r["vs_in_process"] = round(r["images_per_s"] / base, 2) if base else None
        if len(batch_sizes) >= 2:
            lo, hi = runs[f"batch_{min(batch_sizes)}"], runs[f"batch_{max(batch_sizes)}"]
            out["batching_gain"] = round(hi["images_per_s"] / lo["images_per_s"], 2)
        return out


# ------------------------------------------------------------------------------ runs

def _run_in_process(settings: Settings, images: list[Path]) -> dict[str, Any]:
    core = Glimpse(settings)
    try:
        core.migrate()
        t0 = time.perf_counter()
        core.model.load()
        load_s = time.perf_counter() - t0
        queued = CollectJobs()

        runner = InProcessRunner(core)
        t0 = time.perf_counter()
        for p in images:
            accept_path(core, p, tenant=None, enqueuer=queued)
        for job_id in queued.jobs:
            runner.run_now(job_id)
        dt = time.perf_counter() - t0
        done = core.catalog.job_counts().get("done", 0)
        stages = _stage_means(core)
    finally:
        core.close()
    return {"seconds": round(dt, 2), "images_per_s": round(len(images) / dt, 2),
            "done": done, "model_load_s": round(load_s, 1), "stage_ms_per_job": stages}


def _run_celery(settings: Settings, images: list[Path], timeout_s: float) -> dict[str, Any]:
    from workers.enqueue import CeleryEnqueuer

    core = Glimpse(settings)
    core.migrate()
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t0 = time.perf_counter()
        procs = [_start_worker(settings, q, log_dir) for q in ("ingest", "model")]
        _wait_ready(procs, log_dir, timeout_s)
        startup_s = time.perf_counter() - t0
        enq = CeleryEnqueuer(settings)
        t0 = time.perf_counter()
        jobs = [accept_path(core, p, tenant=None, enqueuer=enq).job_id for p in images]
        deadline = time.monotonic() + timeout_s
        while True:
            counts = core.catalog.job_counts()
            if counts.get("done", 0) + counts.get("failed", 0) >= len(jobs):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"celery bench: {counts} after {timeout_s}s")
            time.sleep(0.1)
        dt = time.perf_counter() - t0
        enq.stop()
        batches = _batch_sizes(log_dir)
        stages = _stage_means(core)
    finally:
        for p in procs:
            _stop(p)
        core.close()
    return {"seconds": round(dt, 2), "images_per_s": round(len(images) / dt, 2),
            "done": counts.get("done", 0), "failed": counts.get("failed", 0),
            "worker_startup_s": round(startup_s, 1),
            "model_batch_size": settings.queue.model_batch_size,
            "mean_jobs_per_model_call": round(sum(batches) / len(batches), 2) if batches
            else None, "stage_ms_per_job": stages}


# --------------------------------------------------------------------------- plumbing

@contextlib.contextmanager
def _scratch(base: Settings, folder: Path, broker: str, *, batch_size: int | None = None
             ) -> Iterator[Settings]:
    from sqlalchemy import create_engine, text

    url = base.catalog.url or ""
    name = f"glimpse_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    prefix = f"glimpse-bench-{uuid.uuid4().hex[:8]}:"
    queue = base.queue.model_copy(update={
        "broker_url": broker, "key_prefix": prefix,
        **({"model_batch_size": batch_size} if batch_size else {}),
    })
    s = base.model_copy(update={
        "data_dir": folder, "queue": queue,
        "catalog": base.catalog.model_copy(update={"url": url.rsplit("/", 1)[0] + f"/{name}"}),
        "vectors": base.vectors.model_copy(update={"backend": "qdrant", "qdrant_url": None}),
    })
    try:
        yield s
    finally:
        with admin.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :n"), {"n": name})
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        with contextlib.suppress(Exception):
            import redis

            r = redis.Redis.from_url(broker)
            keys = list(r.scan_iter(match=f"{prefix}*"))
            if keys:
                r.delete(*keys)
            r.close()


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    q, m = settings.queue, settings.model
    env.update({
        "GLIMPSE_DATA_DIR": str(settings.data_dir),
        "GLIMPSE_CATALOG__URL": settings.catalog.url or "",
        "GLIMPSE_VECTORS__BACKEND": settings.vectors.backend,
        "GLIMPSE_QUEUE__BROKER_URL": q.broker_url or "",
        "GLIMPSE_QUEUE__KEY_PREFIX": q.key_prefix,
        "GLIMPSE_QUEUE__MODEL_BATCH_SIZE": str(q.model_batch_size),
        "GLIMPSE_QUEUE__MODEL_BATCH_WAIT_S": str(q.model_batch_wait_s),
        "GLIMPSE_QUEUE__VISIBILITY_TIMEOUT_S": str(q.visibility_timeout_s),
        "GLIMPSE_MODEL__BACKEND": m.backend,
        "GLIMPSE_MODEL__OCR": m.ocr,
        "GLIMPSE_MODEL__BATCH_SIZE": str(m.batch_size),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    })
    return env


def _start_worker(settings: Settings, queues: str, log_dir: Path) -> subprocess.Popen[bytes]:
    with open(log_dir / f"worker-{queues}.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--queues", queues],
            env=_env(settings), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _wait_ready(procs: list[subprocess.Popen[bytes]], log_dir: Path, timeout_s: float) -> None:
    need = {"ingest": ["ready."], "model": ["ready.", "loaded in worker process"]}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"a bench worker exited with {p.returncode}; see {log_dir}")
        texts = {q: (log_dir / f"worker-{q}.log").read_text(errors="replace") for q in need}
        if all(all(n in texts[q] for n in ns) for q, ns in need.items()):
            return
        time.sleep(0.5)
    raise TimeoutError(f"bench workers not ready after {timeout_s}s; see {log_dir}")


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


def _stage_means(core: Glimpse) -> dict[str, float]:
    """Mean milliseconds per job and stage (batched stages are shared out by views)."""
    jobs = core.catalog.jobs_with_status("done")
    sums: dict[str, float] = {}
    for j in jobs:
        for k, v in (j.timings or {}).items():
            if isinstance(v, (int, float)) and k != "batch_views":
                sums[k] = sums.get(k, 0.0) + float(v)
    return {k: round(v / max(1, len(jobs)), 1) for k, v in sums.items()}


def _batch_sizes(log_dir: Path) -> list[int]:
    """Jobs per model call, read from the model worker's task results."""
    import re

    text = (log_dir / "worker-model.log").read_text(errors="replace")
    return [int(n) for n in re.findall(r"'batch': (\d+)", text) if int(n) > 0]


def _write_images(folder: Path, n: int, size: tuple[int, int] = (160, 120)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        rnd = random.Random(7919 * i + 1)
        bg = tuple(rnd.randrange(256) for _ in range(3))
        img = Image.new("RGB", size, bg)  # type: ignore[arg-type]
        d = ImageDraw.Draw(img)
        for _ in range(3):
            x, y = rnd.randrange(size[0] - 20), rnd.randrange(size[1] - 20)
            box = (x, y, x + rnd.randrange(10, 60), y + rnd.randrange(10, 50))
            fill = tuple(rnd.randrange(256) for _ in range(3))
            (d.ellipse if rnd.random() < 0.5 else d.rectangle)(box, fill=fill)  # type: ignore[arg-type]
        d.point((i % size[0], i // size[0]), fill=(i % 256, 0, 0))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        p = folder / f"bench-{i:04d}.png"
        p.write_bytes(buf.getvalue())
        paths.append(p)
    return paths
