"""`glimpse reindex`: rebuild the vector index from the catalog (Postgres is the source of
truth) and switch to it atomically — Qdrant by alias, FAISS by generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.stack import make_image

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", ["qdrant", "faiss"])
def test_reindex_rebuilds_from_the_catalog_and_switches(
    backend: str, tmp_path: Path, pg_url: str, model_ocr_off: Any,
) -> None:
    model = model_ocr_off
    from indexer.context import Glimpse
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner
    from indexer.reindex import reindex
    from indexer.search import SearchQuery
    from indexer.settings import CatalogSettings, ModelSettings, Settings, VectorSettings

    settings = Settings(data_dir=tmp_path / "data", environment="test",
                        catalog=CatalogSettings(url=pg_url),
                        vectors=VectorSettings(backend=backend),  # type: ignore[arg-type]
                        model=ModelSettings(ocr="off"))
    core = Glimpse(settings, model=model)
    core.migrate()
    queued: list[str] = []

    class Collect:
        def enqueue_ingest(self, job_id: str) -> None:
            queued.append(job_id)

    media = []
    for i in range(6):
        p = tmp_path / f"r{i}.png"
        p.write_bytes(make_image(i, seed=9))
        media.append(accept_path(core, p, tenant=None, enqueuer=Collect()).media_id)
    runner = InProcessRunner(core)
    assert all(runner.run_now(j)["status"] == "done" for j in queued)
    before = core.vectors.ids()
    assert len(before) == 6
    # lose points: the rebuild must come from the catalog, not from the old index
    core.vectors.delete_media(media[0])
    core.vectors.delete_media(media[1])
    core.vectors.flush()

    out = reindex(core)
    assert out["views"] == out["points"] == 6 and out["skipped"] == 0, out
    if backend == "qdrant":
        store: Any = core.vectors
        assert out["collection"].endswith("__v2") and out["dropped"].endswith("__v1")
        assert store.current_collection() == out["collection"]
        assert store.ids() == before
    else:
        core.close()  # the FAISS switch is on disk: a fresh process sees the new index
        core = Glimpse(settings, model=model)
        assert core.vectors.ids() == before
    resp = core.search.search(SearchQuery(text="a shape", k=10, rerank=False))
    assert {r.media_id for r in resp.results} == set(media)
    core.close()
