"""Keys and tenants on the real Postgres: migration 0004, two tenants' media, lexical and
vector search, sessions (cap, expiry, ownership), key revocation and signed URLs, through the
real app. The same assertions the unit tests make on SQLite."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.service.conftest import SAMPLES

pytestmark = pytest.mark.integration


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _wait(c: TestClient, key: str, job: str) -> None:
    deadline = time.monotonic() + 180
    while c.get(f"/v1/jobs/{job}", headers=_h(key)).json()["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_two_tenants_on_postgres(tmp_path: Path, pg_url: str, model_ocr_off: Any) -> None:
    from sqlalchemy import create_engine, inspect

    from indexer.context import Glimpse
    from indexer.keys import KeyStore
    from indexer.settings import CatalogSettings, Settings
    from service.app import create_app

    settings = Settings(data_dir=tmp_path / "data", environment="test",
                        catalog=CatalogSettings(url=pg_url))
    settings.auth.key_cache_s = 0.0
    settings.sessions.max_per_tenant = 2
    core = Glimpse(settings, model=model_ocr_off)
    core.migrate()
    eng = create_engine(pg_url)
    tables = set(inspect(eng).get_table_names())
    eng.dispose()
    assert {"api_keys", "server_secrets"} <= tables
    store = KeyStore(core.catalog, cache_s=0)
    a, a_info = store.create("acme", "write")
    b, _ = store.create("globex", "write")
    ro, _ = store.create("acme", "read")
    with TestClient(create_app(core=core)) as c:
        media: dict[str, dict[str, Any]] = {}
        for key, name in ((a, "coffee.jpg"), (b, "chelsea.jpg")):
            r = c.post("/v1/media", files=[("files", (name, (SAMPLES / name).read_bytes()))],
                       headers=_h(key))
            assert r.status_code == 202, r.text
            media[name] = r.json()["items"][0]
            _wait(c, key, media[name]["job_id"])
        mine, theirs = media["coffee.jpg"]["media_id"], media["chelsea.jpg"]["media_id"]
        assert c.get(f"/v1/media/{theirs}", headers=_h(a)).status_code == 404
        assert c.get(f"/v1/media/{theirs}/file", headers=_h(a)).status_code == 404
        assert c.get(f"/v1/jobs/{media['chelsea.jpg']['job_id']}", headers=_h(a)).status_code \
            == 404
        assert [m["media_id"] for m in c.get("/v1/media", headers=_h(a)).json()] == [mine]
        # Postgres full-text (lexical) and the vectors are both scoped: "cat" finds no cat
        for text in ("cat", "tabby cat", "coffee"):
            res = c.post("/v1/search", json={"text": text}, headers=_h(a)).json()
            assert {r["media_id"] for r in res["results"]} <= {mine}, (text, res)
        assert c.post("/v1/search", json={"media_id": theirs},
                      headers=_h(a)).status_code == 404
        # read scope
        r = c.post("/v1/media", files=[("files", ("x.jpg", b"x"))], headers=_h(ro))
        assert r.status_code == 403
        # sessions: owned, capped at 2 per tenant (least recently used go), expire when idle
        sids = [c.post("/v1/search", json={"text": f"coffee {i}"},
                       headers=_h(a)).json()["session_id"] for i in range(3)]
        assert [c.get(f"/v1/sessions/{s}", headers=_h(a)).status_code for s in sids] == [
            404, 200, 200]
        assert c.get(f"/v1/sessions/{sids[-1]}", headers=_h(b)).status_code == 404
        ok = c.post(f"/v1/sessions/{sids[-1]}/messages", json={"question": "what is it?"},
                    headers=_h(a))
        assert ok.status_code == 200, ok.text
        core.conversations.store.idle_s = 0.0
        time.sleep(0.01)
        assert c.get(f"/v1/sessions/{sids[-1]}", headers=_h(a)).status_code == 404
        # signed URLs (secret from Postgres) and revocation
        m = c.get(f"/v1/media/{mine}", headers=_h(a)).json()
        assert c.get(m["thumbnail_url"]).status_code == 200
        store.revoke(a_info.id)
        assert c.get("/v1/media", headers=_h(a)).status_code == 401
        assert c.get("/v1/media", headers=_h(b)).status_code == 200
        # delete: the owner only; the catalog rows go in one transaction on Postgres
        assert c.delete(f"/v1/media/{theirs}", headers=_h(ro)).status_code == 403  # read scope
        assert c.delete(f"/v1/media/{theirs}", headers=_h(b)).status_code == 204
        assert c.get(f"/v1/media/{theirs}", headers=_h(b)).status_code == 404
        assert c.get("/v1/media", headers=_h(b)).json() == []
