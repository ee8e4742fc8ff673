"""Thin tasks: load the process's core, call one `indexer` function, declare retries.

`glimpse.ingest(job_id)` decodes on the ingest queue and hands the job id to
`glimpse.encode(job_id)` on the model queue, which batches it with other decoded jobs
(`settings.queue.model_batch_size` views, waiting up to `model_batch_wait_s` for more) and
persists. Both return only when their stage's work is durable, so late acks mean "done".
`glimpse.generate(generation_id)` runs a recorded generation on the model queue and enqueues
the ingest of the images it made.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from indexer.pipeline.runner import IngestPipeline
from workers.celery_app import INGEST_TASK, MODEL_QUEUE, MODEL_TASK, RETRY_ON, app, current_core
from workers.names import GENERATE_TASK

log = logging.getLogger(__name__)

RETRIES = {"autoretry_for": RETRY_ON, "retry_backoff": 1, "retry_backoff_max": 60,
           "retry_jitter": True, "max_retries": 12}


class JobTask(Task):
    """Records on the job when a task gives up after its last retry."""

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        job_id = args[0] if args else kwargs.get("job_id")
        if not job_id:
            return
        msg = f"gave up after {self.request.retries} retries: {exc}"
        try:
            current_core().catalog.update_job(job_id, status="failed", error=msg)
        except Exception:  # noqa: BLE001 - the catalog may be what is down
            log.warning("could not record the failure of job %s", job_id, exc_info=True)


@app.task(name=INGEST_TASK, base=JobTask, **RETRIES)
def ingest(job_id: str) -> dict[str, Any]:
    out = IngestPipeline(current_core()).stage(job_id)
    if out.get("next"):
        encode.apply_async(args=[job_id], queue=MODEL_QUEUE)
    return out


@app.task(name=MODEL_TASK, base=JobTask, **RETRIES)
def encode(job_id: str) -> dict[str, Any]:
    return IngestPipeline(current_core()).encode_batch(job_id)


_generations: Any = None


def _generation_service() -> Any:
    """One per worker process: it keeps its generators (a diffusion pipeline loads once)."""
    global _generations
    if _generations is None:
        from indexer.generation.service import GenerationService
        from workers.enqueue import CeleryEnqueuer

        core = current_core()
        _generations = GenerationService(core, CeleryEnqueuer(core.settings), recover=False)
    return _generations


@app.task(name=GENERATE_TASK)
def generate(generation_id: str) -> None:
    # no autoretry: a failure is recorded on the generation itself (status failed + why)
    _generation_service().run(generation_id)
