"""`CeleryEnqueuer`: all the API knows of Celery. It publishes a job id to the ingest queue;
the job's status lives in the catalog (`GET /v1/jobs/{id}` reads it), not in Celery."""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from indexer.errors import StoreUnavailable
from indexer.settings import Settings
from workers.celery_app import INGEST_QUEUE, INGEST_TASK, MODEL_QUEUE, make_app
from workers.names import GENERATE_TASK

log = logging.getLogger(__name__)

# an upload request waits at most a few seconds for the broker, then answers 503
_PUBLISH_RETRY = {"max_retries": 4, "interval_start": 0.2, "interval_step": 0.5,
                  "interval_max": 1.0}


class CeleryEnqueuer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app = make_app(settings)

    def enqueue_ingest(self, job_id: str) -> None:
        try:
            self._app.send_task(INGEST_TASK, args=[job_id], queue=INGEST_QUEUE,
                                retry=True, retry_policy=_PUBLISH_RETRY)
        except (KombuOperationalError, RedisConnectionError, OSError) as e:
            raise StoreUnavailable(f"job queue unavailable: {e}", retry_after=10) from e

    def enqueue_generation(self, generation_id: str) -> None:
        """A generation runs on the model queue (its workers hold the model it verifies
        with); its status lives in the catalog's generations table."""
        try:
            self._app.send_task(GENERATE_TASK, args=[generation_id], queue=MODEL_QUEUE,
                                retry=True, retry_policy=_PUBLISH_RETRY)
        except (KombuOperationalError, RedisConnectionError, OSError) as e:
            raise StoreUnavailable(f"job queue unavailable: {e}", retry_after=10) from e

    def stop(self) -> None:
        self._app.close()
