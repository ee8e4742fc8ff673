"""Restart the broker in the middle of an ingest: the ingest completes once it is back.

The machine's shared Redis is left alone: this test runs its own redis-server, SIGKILLs it
mid-ingest — harsher than a clean shutdown — and starts it again on the same port/folder.

* persistent (AOF, `appendfsync always`, as a broker should run): queued and unacked
  messages survive; workers reconnect and carry on.
* not persistent (`--save "" --appendonly no`): every message is gone; the workers'
  sweeper sees an idle broker while the catalog still has unfinished jobs, and
  re-publishes them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.stack import (
    RedisServer,
    Stack,
    image_files,
    job_statuses,
    running_stack,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=[True, False], ids=["aof", "no-persistence"])
def redis_stack(request: pytest.FixtureRequest, tmp_path: Path
                ) -> Iterator[tuple[RedisServer, Stack]]:
    server = RedisServer(tmp_path / "redis", persistent=request.param)
    server.start()
    try:
        with running_stack(tmp_path, server.url, batch_size=4) as st:
            yield server, st
    finally:
        server.kill()


def test_ingest_completes_after_the_broker_restarts(
    redis_stack: tuple[RedisServer, Stack],
) -> None:
    from indexer.context import Glimpse
    from service.app import create_app

    server, st = redis_stack
    st.wait_ready("ingest")
    st.wait_ready("model")
    files = image_files(40, seed=3)
    settings = st.settings()
    with TestClient(create_app(settings, core=Glimpse(settings))) as client:
        r = client.post("/v1/media", files=[("files", (n, d, "application/octet-stream"))
                                            for n, d in files])
        assert r.status_code == 202, r.text
        ids = [it["job_id"] for it in r.json()["items"]]
    wait_for(lambda: job_statuses(st.pg_url, ids).get("done", 0) >= 4, 240, every=0.3,
             what="the first jobs to finish")
    server.kill()
    at_kill = job_statuses(st.pg_url, ids)
    time.sleep(3.0)  # workers see the broker gone and start reconnecting
    server.start()
    assert at_kill.get("done", 0) < len(ids), "finished before the restart; nothing tested"

    def finished() -> bool:
        s = job_statuses(st.pg_url, ids)
        return s.get("done", 0) + s.get("failed", 0) == len(ids)

    wait_for(finished, 300, every=1.0, what="the ingest to complete after the restart")
    assert job_statuses(st.pg_url, ids) == {"done": len(ids)}
    st.stop_workers()

    from sqlalchemy import create_engine, text

    eng = create_engine(st.pg_url)
    with eng.connect() as c:
        n_views = c.execute(text("SELECT count(*) FROM views")).scalar()
        per_media = c.execute(text("SELECT max(n) FROM (SELECT count(*) n FROM views "
                                   "GROUP BY media_id) t")).scalar()
    eng.dispose()
    assert n_views == len(ids) and per_media == 1
