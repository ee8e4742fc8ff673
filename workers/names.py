"""Queue and task names: what the Celery app, its tasks, the enqueuer and the sweeper agree
on. A module of its own so none of them has to import another for a string."""

from __future__ import annotations

INGEST_QUEUE = "ingest"
MODEL_QUEUE = "model"
INGEST_TASK = "glimpse.ingest"
MODEL_TASK = "glimpse.encode"
GENERATE_TASK = "glimpse.generate"
