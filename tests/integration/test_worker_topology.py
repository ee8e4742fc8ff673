"""The worker topology end to end: HTTP upload → Redis → ingest worker → model worker →
Postgres + Qdrant, with real `glimpse worker` processes. Tests share one worker pair and keep
apart by uploading distinct images (each test has its own image seed)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from tests.integration.stack import Stack, image_files, job_statuses, wait_for

pytestmark = pytest.mark.integration

MIME = {"png": "image/png", "jpg": "image/jpeg"}


@contextmanager
def api(stack: Stack, model: Any = None) -> Iterator[TestClient]:
    from indexer.context import Glimpse
    from service.app import create_app

    settings = stack.settings()
    core = Glimpse(settings, model=model)
    with TestClient(create_app(settings, core=core)) as client:
        yield client


def upload(client: TestClient, files: list[tuple[str, bytes]], per_request: int = 50
           ) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i in range(0, len(files), per_request):
        chunk = files[i : i + per_request]
        r = client.post("/v1/media", files=[
            ("files", (name, data, MIME[name.rsplit(".", 1)[1]])) for name, data in chunk])
        assert r.status_code == 202, r.text
        items += r.json()["items"]
    assert all(it["error"] is None and it["job_id"] for it in items), items
    return items


def wait_terminal(stack: Stack, job_ids: list[str], timeout: float) -> dict[str, int]:
    def terminal() -> bool:
        st = job_statuses(stack.pg_url, job_ids)
        return st.get("done", 0) + st.get("failed", 0) == len(job_ids)

    wait_for(terminal, timeout, every=1.0, what=f"{len(job_ids)} jobs to finish")
    return job_statuses(stack.pg_url, job_ids)


def catalog_counts(stack: Stack, media_ids: list[str]) -> dict[str, Any]:
    eng = create_engine(stack.pg_url)
    try:
        with eng.connect() as c:
            views = c.execute(text("SELECT media_id, count(*) FROM views "
                                   "WHERE media_id = ANY(:m) GROUP BY media_id"),
                              {"m": media_ids}).all()
            ready = c.execute(text("SELECT count(*) FROM media WHERE id = ANY(:m) "
                                   "AND status = 'ready'"), {"m": media_ids}).scalar()
            all_views = c.execute(text("SELECT count(*) FROM views")).scalar()
        return {"views": {str(m): int(n) for m, n in views}, "ready": int(ready or 0),
                "all_views": int(all_views or 0)}
    finally:
        eng.dispose()


def vector_points(stack: Stack) -> tuple[set[str], int]:
    """Point ids and count, read with the model worker stopped (Qdrant local is owned by
    one process at a time)."""
    from indexer.context import Glimpse
    from indexer.models.cpu import CpuModel
    from indexer.settings import ModelSettings

    core = Glimpse(stack.settings(), model=CpuModel(ModelSettings(ocr="off")))  # not loaded
    try:
        return core.vectors.ids(), core.vectors.count()
    finally:
        core.close()


@pytest.fixture(scope="module")
def ready_stack(stack: Stack) -> Stack:
    stack.wait_ready("ingest")
    stack.wait_ready("model")
    return stack


def test_poison_file_fails_alone_with_a_clear_error(ready_stack: Stack) -> None:
    """A stored file that went bad after upload (bit rot, a truncated copy) fails its own
    job at decode; the rest of its batch completes."""
    st = ready_stack
    st.kill_worker("ingest", signal.SIGTERM)  # hold decoding while the blob is spoiled
    files = image_files(12, seed=4)
    with api(st) as client:
        items = upload(client, files)
        from indexer.stores.blobs import BlobStore

        media = client.get(f"/v1/media/{items[5]['media_id']}").json()
        path = BlobStore(st.settings().blob_dir).path(media["sha256"])
        path.write_bytes(path.read_bytes()[:60] + b"\x00garbage" * 8)
        st.start_worker("ingest")
        ids = [it["job_id"] for it in items]
        assert wait_terminal(st, ids, timeout=240) == {"done": 11, "failed": 1}
        bad = client.get(f"/v1/jobs/{items[5]['job_id']}").json()
        assert bad["status"] == "failed"
        assert "could not be decoded" in bad["error"] or "corrupt" in bad["error"], bad
        assert client.get(f"/v1/media/{items[5]['media_id']}").json()["status"] == "failed"
        good = client.get(f"/v1/jobs/{items[0]['job_id']}").json()
        assert good["status"] == "done" and good["progress"] == 1.0 and good["error"] is None
    counts = catalog_counts(st, [it["media_id"] for it in items])
    assert counts["ready"] == 11
    assert items[5]["media_id"] not in counts["views"]


def test_http_upload_of_50_images_all_done_and_searchable(ready_stack: Stack) -> None:
    st = ready_stack
    from indexer.models.cpu import CpuModel
    from indexer.settings import ModelSettings

    model = CpuModel(ModelSettings(ocr="off", torch_threads=1))
    loader = threading.Thread(target=model.load)  # overlaps with the ingest
    loader.start()
    files = image_files(50, seed=1)
    with api(st) as client:
        items = upload(client, files)
        ids = [it["job_id"] for it in items]
        seen_running = False
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            jobs = [client.get(f"/v1/jobs/{j}").json() for j in ids[::10]]
            seen_running |= any(j["status"] == "running" for j in jobs)
            st_counts = job_statuses(st.pg_url, ids)
            if st_counts.get("done", 0) + st_counts.get("failed", 0) == len(ids):
                break
            time.sleep(1.0)
        assert job_statuses(st.pg_url, ids) == {"done": 50}
        j = client.get(f"/v1/jobs/{ids[0]}").json()
        assert j["status"] == "done" and j["stage"] == "done" and j["attempts"] >= 1
        assert {"decode", "model", "persist"} <= set(j["timings_ms"]), j
    media_ids = [it["media_id"] for it in items]
    counts = catalog_counts(st, media_ids)
    assert counts["ready"] == 50 and set(counts["views"].values()) == {1}

    # searchable: the model worker owns the local Qdrant folder; stop it, search, restart
    st.kill_worker("model", signal.SIGTERM)
    loader.join(300)
    try:
        with api(st, model=model) as client:
            r = client.post("/v1/search", json={"text": "a coloured shape", "k": 200,
                                                "rerank": False})
            assert r.status_code == 200, r.text
            found = {res["media_id"] for res in r.json()["results"]}
            assert set(media_ids) <= found, f"{len(set(media_ids) - found)} not found"
    finally:
        st.start_worker("model")


def test_sigkill_mid_ingest_loses_and_duplicates_nothing(ready_stack: Stack) -> None:
    st = ready_stack
    st.wait_ready("model")
    files = image_files(200, seed=2)
    with api(st) as client:
        items = upload(client, files, per_request=100)
    ids = [it["job_id"] for it in items]
    media_ids = [it["media_id"] for it in items]
    wait_for(lambda: job_statuses(st.pg_url, ids).get("done", 0) >= 30, 300, every=0.5,
             what="30 jobs done before the kill")
    st.kill_worker("model", signal.SIGKILL)
    st.kill_worker("ingest", signal.SIGKILL)
    at_kill = job_statuses(st.pg_url, ids)
    assert at_kill.get("done", 0) < 200, "ingest finished before the kill; nothing tested"
    st.start_worker("ingest")
    st.start_worker("model")
    final = wait_terminal(st, ids, timeout=480)
    assert final == {"done": 200}, final
    st.stop_workers()  # counts below read the vector store the model worker owned
    counts = catalog_counts(st, media_ids)
    assert counts["ready"] == 200
    assert len(counts["views"]) == 200 and set(counts["views"].values()) == {1}
    from indexer.stores.vectors import point_id

    ids_in_store, n_points = vector_points(st)
    expected = {point_id(m, f"{m}:0") for m in media_ids}
    assert expected <= ids_in_store, f"{len(expected - ids_in_store)} points missing"
    # exactly once across the whole store: one point per catalog view, no strays
    assert n_points == len(ids_in_store) == counts["all_views"]
