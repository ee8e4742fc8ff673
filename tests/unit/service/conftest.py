from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

SAMPLES = Path(__file__).resolve().parents[3] / "indexer" / "samples"


def wait_jobs(client: TestClient, job_ids: list[str], timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    out: dict[str, Any] = {}
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        for j in list(pending):
            r = client.get(f"/v1/jobs/{j}")
            assert r.status_code == 200, r.text
            if r.json()["status"] in ("done", "failed"):
                out[j] = r.json()
                pending.discard(j)
        if pending:
            time.sleep(0.1)
    assert not pending, f"jobs still pending after {timeout}s: {pending}"
    return out


@pytest.fixture()
def client(settings, cpu_model) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from service.app import create_app

    app = create_app(core=Glimpse(settings, model=cpu_model))
    with TestClient(app) as c:
        yield c


def upload(client: TestClient, files: list[tuple[str, bytes]]) -> Any:
    return client.post("/v1/media", files=[("files", (n, b)) for n, b in files])


@pytest.fixture()
def indexed_samples(client: TestClient) -> dict[str, str]:
    """The bundled sample photos, uploaded over HTTP and indexed. name -> media_id"""
    files = [(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob("*.jpg"))]
    r = upload(client, files)
    assert r.status_code == 202, r.text
    items = r.json()["items"]
    done = wait_jobs(client, [i["job_id"] for i in items])
    assert all(d["status"] == "done" for d in done.values()), done
    return {i["filename"].rsplit(".", 1)[0]: i["media_id"] for i in items}
