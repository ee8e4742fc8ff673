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
