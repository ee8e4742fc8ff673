"""The clip embed backend in the worker topology: real `glimpse worker` processes read
`GLIMPSE_MODEL__EMBED_BACKEND=clip` and `GLIMPSE_MODEL__CLIP_MODEL` from their environment
(the two settings a user sets), index HTTP uploads into the checkpoint's own collection, and
the API process searches it. The checkpoint is the tiny random CLIP of
indexer/models/clip/tiny.py, so the assertion is one a random model must pass: an uploaded
image is its own nearest neighbour."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.integration.stack import (
    REDIS_URL,
    Stack,
    fresh_database,
    image_files,
    job_statuses,
    wait_for,
)

pytestmark = pytest.mark.integration


@dataclass
class ClipStack(Stack):
    clip_dir: Path = Path()
    cache_dir: Path = Path()

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update({"GLIMPSE_MODEL__EMBED_BACKEND": "clip",
                    "GLIMPSE_MODEL__CLIP_MODEL": str(self.clip_dir),
                    "GLIMPSE_MODEL__CACHE_DIR": str(self.cache_dir)})
        return env

    def settings(self, **queue: object):  # type: ignore[no-untyped-def]
        s = super().settings(**queue)
        model = s.model.model_copy(update={"embed_backend": "clip",
                                           "clip_model": str(self.clip_dir),
                                           "cache_dir": str(self.cache_dir)})
        return s.model_copy(update={"model": model})


def test_workers_index_into_the_clip_space_and_the_api_searches_it(tmp_path: Path) -> None:
    import uuid

    from indexer.context import Glimpse
    from indexer.models.clip.tiny import build_tiny_clip
    from indexer.search import SearchQuery
    from service.app import create_app
    from tests.integration.stack import drop_prefixed_keys

    ckpt = build_tiny_clip(tmp_path / "tiny-clip")
    prefix = f"glimpse-itest-clip-{uuid.uuid4().hex[:8]}:"
    files = image_files(8, seed=18)
    with fresh_database() as pg:
        st = ClipStack(data_dir=tmp_path / "data", pg_url=pg, broker_url=REDIS_URL,
                       key_prefix=prefix, log_dir=tmp_path / "logs", clip_dir=ckpt,
                       cache_dir=tmp_path / "cache")
        try:
            core = Glimpse(st.settings())
            core.migrate()
            core.close()
            st.start_worker("ingest")
            st.start_worker("model")
            st.wait_ready("ingest")
            st.wait_ready("model")
            settings = st.settings()
            with TestClient(create_app(settings, core=Glimpse(settings))) as client:
                r = client.post("/v1/media", files=[("files", (n, b)) for n, b in files])
                assert r.status_code == 202, r.text
                items = r.json()["items"]
                ids = [it["job_id"] for it in items]
                wait_for(lambda: job_statuses(pg, ids).get("done", 0)
                         + job_statuses(pg, ids).get("failed", 0) == len(ids),
                         300, every=1.0, what="clip jobs")
                assert job_statuses(pg, ids) == {"done": len(ids)}
            st.stop_workers()  # Qdrant local mode: one process owns the folder at a time

            core = Glimpse(st.settings())
            try:
                assert core.model.model_id.startswith("clip:tiny-clip@local:")
                assert "semantic16" in core.vectors.name  # type: ignore[attr-defined]
                assert core.vectors.count() == len(files)
                for k in (2, 5):
                    img = Image.open(io.BytesIO(files[k][1]))
                    res = core.search.search(SearchQuery(image=img, k=3)).results
                    assert res[0].media_id == items[k]["media_id"], [r.filename for r in res]
            finally:
                core.close()
        finally:
            st.stop_workers()
            drop_prefixed_keys(REDIS_URL, prefix)
