"""Helpers for the worker topology tests: a fresh Postgres database, a namespace on the machine's
Redis (or a private redis-server), real `glimpse worker` subprocesses, generated images.

Vector store in these tests: Qdrant local mode in the data folder. It locks its folder to one
process, so exactly one process writes it at a time: the single model worker. The ingest
worker never opens it, the API process only publishes, and the test opens it (to count
points or to search) only after the model worker has stopped. Production points every
process at a Qdrant server (`GLIMPSE_VECTORS__QDRANT_URL`) through the same adapter.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

PG_ADMIN = os.environ.get(
    "GLIMPSE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("GLIMPSE_TEST_REDIS", "redis://127.0.0.1:6379/0")
GLIMPSE = str(Path(sys.executable).with_name("glimpse"))
WORKER_READY_S = 240.0  # loading the cpu model takes ~20 s of CPU, far more on a busy box


# ------------------------------------------------------------------------------ media

def make_image(i: int, seed: int = 0, size: tuple[int, int] = (96, 72)) -> bytes:
    """A small, distinct image: background colour, a shape, its position, a mark of i."""
    rnd = random.Random(seed * 100_003 + i)
    bg = tuple(rnd.randrange(256) for _ in range(3))
    img = Image.new("RGB", size, bg)  # type: ignore[arg-type]
    d = ImageDraw.Draw(img)
    fg = tuple(255 - c for c in bg)
    x0, y0 = rnd.randrange(size[0] // 2), rnd.randrange(size[1] // 2)
    box = (x0, y0, x0 + rnd.randrange(12, size[0] // 2), y0 + rnd.randrange(12, size[1] // 2))
    [d.ellipse, d.rectangle][i % 2](box, fill=fg)  # type: ignore[operator]
    for b in range(16):  # the index in binary: no two images share bytes
        if (i >> b) & 1:
            d.point((b, size[1] - 1), fill=(i % 256, (i * 7) % 256, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG" if i % 3 else "JPEG", quality=90)
    return buf.getvalue()


def image_files(n: int, seed: int) -> list[tuple[str, bytes]]:
    return [(f"img-{seed}-{i:04d}.{'png' if i % 3 else 'jpg'}", make_image(i, seed))
            for i in range(n)]


# ---------------------------------------------------------------------------- services

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"glimpse_itest_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = :n"), {"n": name})
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def drop_prefixed_keys(url: str, prefix: str) -> int:
    import redis

    r = redis.Redis.from_url(url)
    try:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)
        return len(keys)
    finally:
        r.close()


class RedisServer:
    """A private redis-server that a test may kill and start again on the same port and
    folder: persistent (AOF, fsync every write — how a broker should run) or not (a
    restart loses every queued message; the workers' sweeper must recover from the
    catalog)."""

    def __init__(self, folder: Path, *, persistent: bool = True) -> None:
        self.folder = folder
        self.persistent = persistent
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.folder / "redis.log", "ab") as out:  # the child keeps its own fd
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.folder), "--save", "", "--daemonize", "no",
                 *(["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
                   else ["--appendonly", "no"])],
                stdout=out, stderr=subprocess.STDOUT,
            )
        import redis

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


# --------------------------------------------------------------------------- the stack

@dataclass
class Stack:
    """Settings shared by the test process and its workers, and the worker processes."""

    data_dir: Path
    pg_url: str
    broker_url: str
    key_prefix: str
    log_dir: Path
    batch_size: int = 8
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
        env.update({
            "GLIMPSE_DATA_DIR": str(self.data_dir),
            "GLIMPSE_ENVIRONMENT": "test",
            "GLIMPSE_CATALOG__URL": self.pg_url,
            "GLIMPSE_VECTORS__BACKEND": "qdrant",
            "GLIMPSE_QUEUE__BROKER_URL": self.broker_url,
            "GLIMPSE_QUEUE__KEY_PREFIX": self.key_prefix,
            "GLIMPSE_QUEUE__VISIBILITY_TIMEOUT_S": "20",
            "GLIMPSE_QUEUE__MODEL_BATCH_SIZE": str(self.batch_size),
            "GLIMPSE_QUEUE__MODEL_BATCH_WAIT_S": "0.2",
            "GLIMPSE_QUEUE__SWEEP_INTERVAL_S": "2",
            "GLIMPSE_MODEL__OCR": "off",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        })
        return env

    def settings(self, **queue: object):  # type: ignore[no-untyped-def]
        """The same settings the workers read from env, built explicitly."""
        from indexer.settings import (
            CatalogSettings,
            ModelSettings,
            QueueSettings,
            Settings,
            VectorSettings,
        )

        q: dict[str, object] = {
            "broker_url": self.broker_url, "key_prefix": self.key_prefix,
            "visibility_timeout_s": 20, "model_batch_size": self.batch_size,
            "model_batch_wait_s": 0.2, "sweep_interval_s": 2, **queue,
        }
        return Settings(
            data_dir=self.data_dir, environment="test",
            catalog=CatalogSettings(url=self.pg_url), vectors=VectorSettings(backend="qdrant"),
            model=ModelSettings(ocr="off"), queue=QueueSettings.model_validate(q),
        )

    def start_worker(self, queues: str) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = f"worker-{queues}-{len(os.listdir(self.log_dir))}.log"
        with open(self.log_dir / name, "ab") as out:
            p = subprocess.Popen(
                [GLIMPSE, "worker", "--queues", queues, "--concurrency", "1"],
                env=self.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.workers[queues] = p
        return p

    def wait_ready(self, queues: str, timeout: float = WORKER_READY_S) -> None:
        """Until the worker logs 'ready' and (model workers) its model is loaded."""
        p = self.workers[queues]
        deadline = time.monotonic() + timeout
        need = ["ready."] + (["loaded in worker process"] if "model" in queues else [])
        logs = sorted(self.log_dir.glob(f"worker-{queues}-*.log"), key=os.path.getmtime)
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"worker {queues} exited with {p.returncode}:\n"
                                   + logs[-1].read_text()[-3000:])
            text = logs[-1].read_text(errors="replace")
            if all(n in text for n in need):
                return
            time.sleep(0.5)
        raise TimeoutError(f"worker {queues} not ready after {timeout}s:\n"
                           + logs[-1].read_text()[-3000:])

    def kill_worker(self, queues: str, sig: int = signal.SIGKILL) -> None:
        p = self.workers.pop(queues, None)
        if p is None or p.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
        try:
            p.wait(60 if sig == signal.SIGTERM else 10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)

    def stop_workers(self) -> None:
        for q in list(self.workers):
            self.kill_worker(q, signal.SIGTERM)  # warm shutdown: finish, ack, close stores


@contextlib.contextmanager
def running_stack(tmp: Path, broker_url: str, *, batch_size: int = 8) -> Iterator[Stack]:
    prefix = f"glimpse-itest-{uuid.uuid4().hex[:8]}:"
    with fresh_database() as pg:
        st = Stack(data_dir=tmp / "data", pg_url=pg, broker_url=broker_url, key_prefix=prefix,
                   log_dir=tmp / "logs", batch_size=batch_size)
        try:
            from indexer.context import Glimpse

            core = Glimpse(st.settings())
            core.migrate()
            core.close()
            st.start_worker("ingest")
            st.start_worker("model")
            yield st
        finally:
            st.stop_workers()
            with contextlib.suppress(Exception):
                drop_prefixed_keys(broker_url, prefix)


def wait_for(cond: Callable[[], bool], timeout: float, every: float = 0.5,
             what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def job_statuses(pg_url: str, job_ids: list[str]) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    eng = create_engine(pg_url)
    try:
        with eng.connect() as c:
            rows = c.execute(text("SELECT status, count(*) FROM jobs WHERE id = ANY(:ids) "
                                  "GROUP BY status"), {"ids": job_ids}).all()
        return {str(s): int(n) for s, n in rows}
    finally:
        eng.dispose()
