"""Schemathesis over every route of the OpenAPI schema (bodies are declared: JSON as Pydantic
models, multipart as UploadFile/Form or a declared multipart schema), with an admin key so
every route is reachable: any 5xx fails the test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

ADMIN = "fuzz-admin-key-" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def fuzz_app(cpu_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from indexer.settings import Settings
    from service.app import create_app

    s = Settings(data_dir=tmp_path_factory.mktemp("fuzz"), environment="test",
                 admin_key=ADMIN)
    s.limits.max_upload_bytes = 2 * 1024 * 1024
    app = create_app(core=Glimpse(s, model=cpu_model))
    with TestClient(app) as c:  # lifespan: migrations, the admin key, the runner
        from tests.unit.service.conftest import SAMPLES

        r = c.post("/v1/media", headers={"Authorization": f"Bearer {ADMIN}"},
                   files=[("files", (p.name, p.read_bytes())) for p in
                          sorted(SAMPLES.glob("*.jpg"))[:2]])
        assert r.status_code == 202, r.text
        yield app


@pytest.fixture(scope="module")
def api_schema(fuzz_app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app,
                                          headers={"Authorization": f"Bearer {ADMIN}"})


def test_every_route_is_in_the_schema(fuzz_app: Any) -> None:
    paths = fuzz_app.openapi()["paths"]
    for p in ("/v1/media", "/v1/media/{media_id}", "/v1/media/{media_id}/file",
              "/v1/media/{media_id}/extract", "/v1/jobs/{job_id}", "/v1/search",
              "/v1/search/image", "/v1/sessions/{session_id}",
              "/v1/sessions/{session_id}/messages", "/v1/keys", "/v1/keys/{key_id}",
              "/health", "/metrics"):
        assert p in paths, p
    # request bodies are declared, so the fuzzer reaches them
    assert "multipart/form-data" in paths["/v1/media"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in paths["/v1/search/image"]["post"]["requestBody"]["content"]
    assert "application/json" in paths["/v1/search"]["post"]["requestBody"]["content"]
    assert "application/json" in paths["/v1/sessions/{session_id}/messages"]["post"][
        "requestBody"]["content"]


def test_no_server_errors(api_schema: Any) -> None:
    """Each operation's generated cases (Hypothesis, through Schemathesis' strategies; the
    pytest plugin's fixture loader does not run on pytest 9 here), any 5xx fails."""
    failures: list[str] = []
    labels: list[str] = []
    statuses: dict[int, int] = {}
    for result in api_schema.get_all_operations():
        op = result.ok()
        labels.append(op.label)

        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> "
                                f"{response.status_code}: {response.text[:300]}")
            assert response.status_code < 500

        with contextlib.suppress(AssertionError):  # recorded above; fuzz the other operations
            run()
    assert len(labels) >= 15, labels
    print("schemathesis:", len(labels), "operations,", sum(statuses.values()), "calls,",
          dict(sorted(statuses.items())))
    assert sum(statuses.values()) >= 10 * len(labels)
    assert sum(n for st, n in statuses.items() if st < 300) >= len(labels)
    assert not failures, "\n".join(failures[:10])
