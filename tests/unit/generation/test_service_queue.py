"""With a broker, a generation is handed to the queue (a model-queue worker runs it) instead
of this process's thread pool; the worker's run stores the images through the queue too; and
the API process does not fail requests that wait in the broker."""

from __future__ import annotations

from pathlib import Path

from tests.unit.service.conftest import SAMPLES


class _Queue:
    def __init__(self) -> None:
        self.ingest: list[str] = []
        self.generations: list[str] = []

    def enqueue_ingest(self, job_id: str) -> None:
        self.ingest.append(job_id)

    def enqueue_generation(self, generation_id: str) -> None:
        self.generations.append(generation_id)


def test_broker_hands_the_generation_to_a_worker(settings, cpu_model) -> None:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from indexer.generation.service import GenerationRequest, GenerationService
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner

    core = Glimpse(settings, model=cpu_model)
    core.migrate()
    runner = InProcessRunner(core)
    acc = accept_path(core, Path(SAMPLES / "chelsea.jpg"), tenant=None, enqueuer=runner)
    runner.wait_idle()
    runner.stop()
    assert core.catalog.get_media(acc.media_id).status == "ready"

    q = _Queue()
    api = GenerationService(core, q)
    gid, _ = api.submit(settings.tenant, GenerationRequest("a cat", seed=1))
    assert q.generations == [gid] and api._pool is None  # nothing ran here
    assert api.get(settings.tenant, gid).status == "queued"

    # an API process starting with a broker configured leaves the queued request alone
    settings.queue.broker_url = "redis://127.0.0.1:6379/15"
    GenerationService(core, q)
    assert api.get(settings.tenant, gid).status == "queued"

    worker = GenerationService(core, q, recover=False)
    worker.run(gid)
    row = api.get(settings.tenant, gid)
    assert row.status == "done" and len(row.media_ids) == 1
    assert len(q.ingest) == 1  # the generated image's indexing went to the queue
    core.close()


def test_the_task_is_registered_on_the_worker_app() -> None:
    from workers.names import GENERATE_TASK
    from workers.tasks import app

    assert GENERATE_TASK in app.tasks
