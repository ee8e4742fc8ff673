"""The embedded default batches waiting jobs into one model pass; a poison file fails alone."""

from __future__ import annotations

import shutil
from pathlib import Path

from indexer.context import Glimpse
from indexer.ingest import accept_path
from indexer.jobs import InProcessRunner
from indexer.search import SearchQuery
from indexer.stores.vectors import point_id

SAMPLES = Path(__file__).resolve().parents[3] / "indexer" / "samples"


class Collect:
    def __init__(self) -> None:
        self.jobs: list[str] = []

    def enqueue_ingest(self, job_id: str) -> None:
        self.jobs.append(job_id)


def test_batch_with_a_poison_file(settings, cpu_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    core = Glimpse(settings, model=cpu_model)
    core.migrate()
    names = ["chelsea", "coffee", "rocket", "astronaut"]
    for n in names:
        shutil.copy(SAMPLES / f"{n}.jpg", tmp_path / f"{n}.jpg")
    enq = Collect()
    media = [accept_path(core, tmp_path / f"{n}.jpg", tenant=None, enqueuer=enq).media_id
             for n in names]
    # the stored bytes of one file go bad after it was accepted (disk corruption)
    blob = core.blobs.path(core.catalog.get_media(media[1]).sha256)
    blob.write_bytes(blob.read_bytes()[:200])

    calls = []
    real = cpu_model.encode_views

    def spy(views):  # type: ignore[no-untyped-def]
        calls.append(len(views))
        return real(views)

    cpu_model.encode_views = spy
    try:
        results = InProcessRunner(core).run_batch(enq.jobs)
    finally:
        del cpu_model.encode_views
    assert [results[j]["status"] for j in enq.jobs] == ["done", "failed", "done", "done"]
    assert "decoded" in str(results[enq.jobs[1]]["error"]) or "corrupt" in str(
        results[enq.jobs[1]]["error"])
    assert calls == [3]  # the three good images shared one model pass
    bad = core.catalog.get_media(media[1])
    assert bad.status == "failed" and core.catalog.views_of(media[1]) == []
    ids = core.vectors.ids()
    for mid in (media[0], media[2], media[3]):
        assert point_id(mid, f"{mid}:0") in ids
    assert not any(i == point_id(media[1], f"{media[1]}:0") for i in ids)
    top = core.search.search(SearchQuery(text="a cat", k=1)).results[0]
    assert top.media_id == media[0]
    core.close()


def test_transient_store_errors_are_retried_then_recorded(settings, cpu_model,  # type: ignore[no-untyped-def]
                                                           tmp_path: Path) -> None:
    from indexer.errors import StoreUnavailable

    core = Glimpse(settings, model=cpu_model)
    core.migrate()
    shutil.copy(SAMPLES / "coffee.jpg", tmp_path / "a.jpg")
    shutil.copy(SAMPLES / "rocket.jpg", tmp_path / "b.jpg")
    enq = Collect()
    ma = accept_path(core, tmp_path / "a.jpg", tenant=None, enqueuer=enq).media_id
    mb = accept_path(core, tmp_path / "b.jpg", tenant=None, enqueuer=enq).media_id
    real = core.vectors.upsert
    failures = {"left": 1}

    def flaky(points):  # type: ignore[no-untyped-def]  # fault injected at the store seam
        if failures["left"] > 0:
            failures["left"] -= 1
            raise StoreUnavailable("vector store restarting")
        return real(points)

    core.vectors.upsert = flaky  # type: ignore[method-assign]
    runner = InProcessRunner(core, retries=2, backoff_s=0.01)
    assert runner.run_now(enq.jobs[0])["status"] == "done"  # one transient failure, retried
    assert core.catalog.get_media(ma).status == "ready"
    failures["left"] = 99
    res = runner.run_now(enq.jobs[1])
    assert res["status"] == "failed" and "gave up after 3 attempts" in str(res["error"])
    job = core.catalog.get_job(enq.jobs[1])
    assert job.status == "failed" and core.catalog.get_media(mb).status == "failed"
    core.close()
