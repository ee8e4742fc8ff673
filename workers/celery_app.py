"""The Celery app of the worker topology: Redis broker, two queues, late acks.

Queues:

* `ingest` — validate/decode media into views, keyframes, pages (CPU). Task `glimpse.ingest`.
* `model`  — batched model calls and persistence (what a GPU worker consumes).
  Task `glimpse.encode`.

Delivery: a message is acked only after its task returned (`task_acks_late`), i.e. after
the job's rows and points are persisted or the job is recorded as failed. A worker killed
mid-task leaves the message unacked; Redis hands it out again once `visibility_timeout`
(settings.queue.visibility_timeout_s — keep it longer than the longest task) has passed, or
at once when only the pool child died (`task_reject_on_worker_lost`). Tasks are idempotent,
so a redelivery is safe. Transient failures (broker, catalog or vector store down) retry
with exponential backoff; invalid media never retries — the job is marked failed.

Models load in `worker_process_init` (the `Glimpse` core is built in each pool process),
never at import. The pool is prefork; `glimpse worker` runs one process per worker by
default (`--concurrency 1`), which is what a GPU model worker wants.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from kombu import Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from indexer.context import Glimpse
from indexer.errors import ModelUnavailable
from indexer.pipeline.runner import TRANSIENT
from indexer.settings import Settings
from workers.names import INGEST_QUEUE, INGEST_TASK, MODEL_QUEUE, MODEL_TASK

__all__ = ["INGEST_QUEUE", "INGEST_TASK", "MODEL_QUEUE", "MODEL_TASK"]  # and the rest below

log = logging.getLogger(__name__)

QUEUES_ENV = "GLIMPSE_WORKER_QUEUES"

# what a task retries on (with backoff): the pipeline's transient errors plus the broker's
RETRY_ON: tuple[type[BaseException], ...] = (
    *TRANSIENT, KombuOperationalError, RedisConnectionError, RedisTimeoutError,
    ModelUnavailable,
)
# publishing from inside a task rides out a broker restart of about two minutes
TASK_PUBLISH_RETRY = {"max_retries": 60, "interval_start": 0.2, "interval_step": 0.5,
                      "interval_max": 2.0}


def celery_config(settings: Settings) -> dict[str, Any]:
    q = settings.queue
    vt = int(q.visibility_timeout_s)
    transport: dict[str, Any] = {
        "visibility_timeout": vt,
        # how often a worker looks for unacked messages older than vt (dead workers')
        "unacked_restore_interval": max(1, min(10, vt // 10)),
        "unacked_restore_throttle": 1,
    }
    if q.key_prefix:
        transport["global_keyprefix"] = q.key_prefix
    conf: dict[str, Any] = {
        "broker_url": q.broker_url or "redis://127.0.0.1:6379/0",
        "broker_transport_options": transport,
        "result_backend": q.result_backend,
        "task_ignore_result": q.result_backend is None,
        "task_queues": (Queue(INGEST_QUEUE), Queue(MODEL_QUEUE)),
        "task_default_queue": INGEST_QUEUE,
        "task_routes": {INGEST_TASK: {"queue": INGEST_QUEUE},
                        MODEL_TASK: {"queue": MODEL_QUEUE}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_publish_retry": True,
        "task_publish_retry_policy": TASK_PUBLISH_RETRY,
        "worker_send_task_events": False,
        # a task running when the broker drops finishes; its ack may be lost, and the
        # redelivered message is a no-op (tasks are idempotent)
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "timezone": "UTC",
    }
    if q.result_backend and q.result_backend.startswith("redis") and q.key_prefix:
        conf["result_backend_transport_options"] = {"global_keyprefix": q.key_prefix}
    return conf


def make_app(settings: Settings) -> Celery:
    """A configured app; the API builds one to publish, workers use the module's `app`."""
    a = Celery("glimpse", include=["workers.tasks"], set_as_current=False)
    a.conf.update(celery_config(settings))
    return a


# the app `celery -A workers.celery_app worker` finds; configured from GLIMPSE_* env
app = Celery("glimpse", include=["workers.tasks"])
app.conf.update(celery_config(Settings()))

_state: dict[str, Any] = {"settings": None, "core": None}


def _queues() -> set[str]:
    raw = os.environ.get(QUEUES_ENV, f"{INGEST_QUEUE},{MODEL_QUEUE}")
    return {q.strip() for q in raw.split(",") if q.strip()}


def current_core() -> Glimpse:
    """The pool process's core (built in worker_process_init; lazily for a solo pool)."""
    if _state["core"] is None:
        try:
            _init_core()
        except Exception as e:  # a broken install or a missing checkpoint: retry later
            raise ModelUnavailable(f"worker could not build its core: {e!r}") from e
    core: Glimpse = _state["core"]
    return core


def _init_core() -> None:
    settings: Settings = _state["settings"] or Settings()
    core = Glimpse(settings)
    if MODEL_QUEUE in _queues():
        core.model.load()  # load weights and warm up before the first task
        log.info("model %s loaded in worker process %d", core.model.model_id, os.getpid())
    _state["core"] = core


@worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    try:
        _init_core()
    except Exception:  # noqa: BLE001 - logged; the first task tries again (and retries)
        log.exception("worker process %d could not build its core", os.getpid())


@worker_process_shutdown.connect
def _on_process_shutdown(**_: Any) -> None:
    core = _state.get("core")
    if core is not None:
        core.close()
        _state["core"] = None


@worker_ready.connect
def _on_worker_ready(**_: Any) -> None:
    """Main process: start the sweeper that re-publishes jobs the broker lost."""
    from indexer.stores.catalog import Catalog
    from workers.recovery import Sweeper

    settings: Settings = _state["settings"] or Settings()
    if settings.queue.sweep_interval_s <= 0 or not settings.uses_broker:
        return
    sweeper = Sweeper(Catalog(settings.catalog_url, pool_size=1), make_app(settings),
                      settings.queue.sweep_interval_s)
    sweeper.start()
    _state["sweeper"] = sweeper


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    sweeper = _state.pop("sweeper", None)
    if sweeper is not None:
        sweeper.stop()


def run_worker(settings: Settings, queues: str = "ingest,model", concurrency: int = 1) -> int:
    """Run a worker in this process (blocks). Prefork pool, `concurrency` processes, each
    with its own core; a model-queue worker prefetches one message per process."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = set(names) - {INGEST_QUEUE, MODEL_QUEUE}
    if not names or unknown:
        raise SystemExit(f"unknown queue(s) {sorted(unknown)}; use ingest and/or model")
    if not settings.uses_broker:
        raise SystemExit("GLIMPSE_QUEUE__BROKER_URL is not set; a worker needs a broker")
    os.environ[QUEUES_ENV] = ",".join(names)
    _state["settings"] = settings
    app.conf.update(celery_config(settings))
    if MODEL_QUEUE not in names:
        app.conf.worker_prefetch_multiplier = 4  # decode tasks are short and independent
    argv = [
        "worker", f"--queues={','.join(names)}", f"--concurrency={max(1, concurrency)}",
        "--pool=prefork", "--loglevel=INFO", f"--hostname={'+'.join(names)}-{os.getpid()}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    log.info("starting celery worker: %s", " ".join(argv))
    app.worker_main(argv)
    return 0
