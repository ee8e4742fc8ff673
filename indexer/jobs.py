"""The in-process job runner of the embedded default: no broker, a few background threads.

Jobs live in the catalog, so a restart resumes what was queued or interrupted
(`recover()`), exactly as a Celery worker would pick up unacked messages.

`queue.local_lanes` threads ("lanes") each take a batch of waiting jobs and run it through
the whole pipeline. Two lanes on a 2-core laptop keep both cores busy: while one lane is in a
serial stage (decode, caption embedding, the catalog writes) the other is in the model's
native code (onnxruntime, OpenCV), which releases the GIL.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from indexer.context import Glimpse
from indexer.pipeline.runner import TRANSIENT, IngestPipeline
from indexer.stores.vectors import point_id

log = logging.getLogger(__name__)


class InProcessRunner:
    def __init__(self, core: Glimpse, *, retries: int = 3, backoff_s: float = 0.5,
                 on_result: Callable[[str, dict[str, object]], None] | None = None) -> None:
        self.core = core
        self.on_result = on_result  # called from a lane with each finished job's result
        self.pipeline = IngestPipeline(core)
        self.retries = retries
        self.backoff_s = backoff_s
        self._q: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Event()
        self._idle.set()
        self._state = threading.Lock()
        self._busy = 0  # lanes running a batch (guarded by _state)
        self.lanes = max(1, core.settings.queue.local_lanes)

    def start(self) -> None:
        with self._state:
            if self._threads:
                return
            for i in range(self.lanes):
                t = threading.Thread(target=self._loop, name=f"glimpse-ingest-{i}", daemon=True)
                self._threads.append(t)
                t.start()

    def recover(self) -> int:
        """Re-enqueue jobs a previous process left queued or running, and re-index media
        whose vectors a crash lost (the catalog is the source of truth)."""
        jobs = self.core.catalog.jobs_with_status("queued", "running")
        for j in jobs:
            self.enqueue_ingest(j.id)
        repaired = 0
        for media_id in missing_media(self.core):
            job = self.core.catalog.create_job(media_id)
            self.enqueue_ingest(job.id)
            repaired += 1
        if repaired:
            log.warning("re-indexing %d media whose vectors were missing", repaired)
        return len(jobs) + repaired

    def enqueue_ingest(self, job_id: str) -> None:
        with self._state:
            self._idle.clear()
            self._q.put(job_id)
        self.start()

    def run_now(self, job_id: str) -> dict[str, object]:
        """Run a job in the calling thread, with the same retries."""
        return self.run_batch([job_id]).get(job_id, {"status": "failed"})

    def _give_up(self, job_id: str, msg: str) -> None:
        try:
            job = self.core.catalog.get_job(job_id)
            self.core.catalog.update_job(job_id, status="failed", error=msg)
            self.core.catalog.set_media_status(job.media_id, "failed", error=msg)
        except Exception:  # noqa: BLE001 - the catalog may be what is still down
            log.error("could not record the failure of job %s: %s", job_id, msg)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def stop(self) -> None:
        with self._state:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._q.put(None)
        for t in threads:
            t.join(timeout=30)

    def _batch_size(self) -> int:
        """Up to model.batch_size jobs, but when fewer are waiting than that for every lane,
        split them so each lane gets a share (2 lanes, 10 jobs: 5 + 5, not 10 + 0)."""
        batch_max = max(1, self.core.settings.model.batch_size)
        waiting = self._q.qsize() + 1
        return max(1, min(batch_max, -(-waiting // self.lanes)))

    def _loop(self) -> None:
        while True:
            job_id = self._q.get()
            if job_id is None:
                return
            with self._state:
                self._busy += 1
            batch = [job_id]
            stop = False
            size = self._batch_size()
            while len(batch) < size:  # whatever else is already waiting joins the batch
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                results = self.run_batch(batch)
                if self.on_result is not None:
                    for jid, res in results.items():
                        self.on_result(jid, res)
            except Exception:  # noqa: BLE001 - the loop must outlive any one job
                log.exception("jobs %s crashed the runner loop", batch)
            with self._state:
                self._busy -= 1
                last = self._busy == 0 and self._q.empty()
            if stop or last:
                try:
                    self.pipeline.maybe_flush(force=True)
                except Exception:  # noqa: BLE001
                    log.exception("flushing the vector index failed")
                with self._state:  # no enqueue can slip between the check and the set
                    if self._q.empty() and self._busy == 0:
                        self._idle.set()
            if stop:
                return

    def run_batch(self, job_ids: list[str]) -> dict[str, dict[str, object]]:
        """Jobs that are waiting together share one model pass; transient store errors are
        retried with backoff like single jobs."""
        for attempt in range(self.retries + 1):
            try:
                return self.pipeline.run_many(job_ids)  # type: ignore[return-value]
            except TRANSIENT as e:
                if attempt == self.retries:
                    msg = f"gave up after {attempt + 1} attempts: {e}"
                    for j in job_ids:
                        self._give_up(j, msg)
                    return {j: {"status": "failed", "error": msg} for j in job_ids}
                time.sleep(self.backoff_s * 2**attempt)
        return {}


def missing_media(core: Glimpse) -> list[str]:
    """Ready media with at least one view whose vector point is missing from the index."""
    have = core.vectors.ids()
    missing: set[str] = set()
    for batch in core.catalog.iter_views():
        for v in batch:
            if point_id(v.media_id, v.id) not in have:
                missing.add(v.media_id)
    ready = core.catalog.media_by_ids(sorted(missing))
    return [m for m, row in ready.items() if row.status == "ready"]
