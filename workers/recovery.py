"""Re-publish jobs the broker lost. Postgres is the source of truth for what is unfinished;
the broker only carries the next step. A broker restarted without persistence, or an upload
whose publish failed after its job was recorded, leaves jobs that no message will ever run.

Rule: when the broker is idle — both queues empty and no message unacked (with late acks,
every running task's message is unacked) — every job the catalog still calls `queued` or
`running` is stranded, so publish its next step again. Jobs younger than `min_age_s` are
left alone (their publish may be in flight). A job published twice is harmless: tasks are
idempotent and a finished job's task is a no-op.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from celery import Celery

from indexer.pipeline.runner import STAGE_DECODED, STAGE_MODEL
from indexer.stores.catalog import Catalog, utcnow
from workers.names import INGEST_QUEUE, INGEST_TASK, MODEL_QUEUE, MODEL_TASK

log = logging.getLogger(__name__)


def broker_busy(app: Celery, queues: tuple[str, ...]) -> bool:
    with app.connection_for_read() as conn:
        ch: Any = conn.default_channel
        sizes = sum(int(ch._size(q)) for q in queues)  # every priority sub-queue
        unacked = int(ch.client.hlen(ch.unacked_key))
        return sizes + unacked > 0


def requeue_stranded(catalog: Catalog, app: Celery, *, min_age_s: float = 30.0) -> int:
    if broker_busy(app, (INGEST_QUEUE, MODEL_QUEUE)):
        return 0
    cutoff = utcnow() - timedelta(seconds=min_age_s)
    n = 0
    for j in catalog.jobs_with_status("queued", "running"):
        created = j.created_at
        if created.tzinfo is None:  # SQLite drops the zone; the catalog writes UTC
            created = created.replace(tzinfo=cutoff.tzinfo)
        if created > cutoff:
            continue
        if j.status == "running" and j.stage in (STAGE_DECODED, STAGE_MODEL):
            app.send_task(MODEL_TASK, args=[j.id], queue=MODEL_QUEUE)
        else:
            app.send_task(INGEST_TASK, args=[j.id], queue=INGEST_QUEUE)
        n += 1
    if n:
        log.warning("re-published %d stranded jobs (the broker held no message for them)", n)
    return n


class Sweeper:
    """A daemon thread in the worker's main process that runs `requeue_stranded`."""

    def __init__(self, catalog: Catalog, app: Celery, interval_s: float) -> None:
        self.catalog = catalog
        self.app = app
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glimpse-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                requeue_stranded(self.catalog, self.app,
                                 min_age_s=max(10.0, 2 * self.interval_s))
            except Exception:  # noqa: BLE001 - broker or catalog down: try next round
                log.info("sweep skipped", exc_info=True)
