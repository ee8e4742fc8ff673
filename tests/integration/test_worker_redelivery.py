"""Redelivery at the stage level, on Postgres + Qdrant local: the ingest stage delivered
twice, and two deliveries of one model task racing each other, leave exactly one copy of
every catalog row and vector point."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.integration.stack import make_image

pytestmark = pytest.mark.integration


def test_duplicate_deliveries_leave_one_copy(
    tmp_path: Path, pg_url: str, model_ocr_off: Any,
) -> None:
    from indexer.context import Glimpse
    from indexer.ingest import accept_path
    from indexer.pipeline.runner import IngestPipeline
    from indexer.settings import (
        CatalogSettings,
        ModelSettings,
        QueueSettings,
        Settings,
        VectorSettings,
    )
    from indexer.stores.catalog import ViewRow
    from indexer.stores.vectors import point_id

    settings = Settings(data_dir=tmp_path / "data", environment="test",
                        catalog=CatalogSettings(url=pg_url),
                        vectors=VectorSettings(backend="qdrant"),
                        model=ModelSettings(ocr="off"),
                        queue=QueueSettings(model_batch_size=8, model_batch_wait_s=0.0))
    core = Glimpse(settings, model=model_ocr_off)
    core.migrate()
    jobs: list[str] = []

    class Collect:
        def enqueue_ingest(self, job_id: str) -> None:
            jobs.append(job_id)

    media = []
    for i in range(3):
        p = tmp_path / f"d{i}.png"
        p.write_bytes(make_image(i, seed=11))
        media.append(accept_path(core, p, tenant=None, enqueuer=Collect()).media_id)
    pipe = IngestPipeline(core)
    for job_id in jobs:
        first = pipe.stage(job_id)
        assert first["status"] == "decoded" and first["next"]
        again = pipe.stage(job_id)  # the ingest message redelivered
        assert again["next"] and again.get("noop")

    # the original model delivery and its redelivery run at once
    with ThreadPoolExecutor(2) as ex:
        outs = list(ex.map(lambda _: pipe.encode_batch(jobs[0]), range(2)))
    assert sorted(o["batch"] for o in outs) == [0, 3], outs  # one batch did all three
    assert all(o["status"] == "done" for o in outs)
    # the batch-mates' own messages arrive later: no-ops
    assert pipe.encode_batch(jobs[1]) == {"status": "done", "noop": True, "batch": 0}
    assert pipe.stage(jobs[2]) == {"status": "done", "next": False, "noop": True}

    with core.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(ViewRow)) == 3
    assert core.vectors.ids() == {point_id(m, f"{m}:0") for m in media}
    assert core.vectors.count() == 3
    row = core.catalog.get_job(jobs[0])
    assert row.status == "done" and row.attempts == 1, (row.status, row.attempts)
    assert not list((settings.data_dir / "staging").glob("*.json"))  # manifests cleaned
    core.close()
