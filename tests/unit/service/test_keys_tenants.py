"""API keys decide the tenant of each request: the other tenant's request sees nothing of
this one's media, sessions or jobs (404 exactly like an unknown id), read keys cannot write,
admin keys manage keys over HTTP, links a browser follows are signed and short-lived."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.conftest import SAMPLES, wait_jobs


def _png(color: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture()
def app_client(settings, cpu_model) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from service.app import create_app

    settings.auth.key_cache_s = 0.0
    app = create_app(core=Glimpse(settings, model=cpu_model))
    with TestClient(app) as c:
        yield c


def _cli_key(data_dir: Path, tenant: str, scope: str, capsys) -> str:  # type: ignore[no-untyped-def]
    from service.cli import main

    assert main(["keys", "create", "--data-dir", str(data_dir), "--tenant", tenant,
                 "--scope", scope, "--label", f"{tenant}-{scope}"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    return out[-1]


@pytest.fixture()
def two_tenants(app_client: TestClient, settings, capsys) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Tenants acme and globex with their own write keys and media, acme's read key."""
    keys = {"acme": _cli_key(settings.data_dir, "acme", "write", capsys),
            "globex": _cli_key(settings.data_dir, "globex", "write", capsys),
            "acme_read": _cli_key(settings.data_dir, "acme", "read", capsys)}
    media: dict[str, dict[str, Any]] = {}
    for tenant, name in (("acme", "coffee.jpg"), ("globex", "chelsea.jpg")):
        r = app_client.post("/v1/media", files=[("files", (name, (SAMPLES / name).read_bytes()))],
                            headers=_h(keys[tenant]))
        assert r.status_code == 202, r.text
        media[tenant] = r.json()["items"][0]
    for tenant in ("acme", "globex"):
        job = media[tenant]["job_id"]
        deadline = time.monotonic() + 120
        while app_client.get(f"/v1/jobs/{job}", headers=_h(keys[tenant])).json()[
                "status"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return {"keys": keys, "media": media}


def test_cli_prints_the_key_last_stores_only_its_hash(settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from indexer.keys import ApiKeyRow
    from indexer.stores.catalog import Catalog
    from service.cli import main

    key = _cli_key(settings.data_dir, "acme", "admin", capsys)
    assert key.startswith("glk_") and len(key) > 40
    assert main(["keys", "list", "--data-dir", str(settings.data_dir), "--json"]) == 0
    listed = capsys.readouterr().out
    assert key not in listed and '"tenant": "acme"' in listed
    cat = Catalog(settings.catalog_url)
    with cat.session() as s:
        (row,) = s.query(ApiKeyRow).all()
        assert key not in (row.key_hash, row.lookup, row.label)
        kid = row.id
    cat.close()
    assert main(["keys", "revoke", "--data-dir", str(settings.data_dir), kid]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "create", "--data-dir", str(settings.data_dir), "--tenant",
                 "x y"]) == 1


def test_other_tenant_ids_are_404_exactly_like_unknown_ones(
        app_client: TestClient, two_tenants: dict[str, Any]) -> None:
    keys, media = two_tenants["keys"], two_tenants["media"]
    theirs, job = media["acme"]["media_id"], media["acme"]["job_id"]
    unknown = "m_" + "0" * 24
    g = _h(keys["globex"])
    for path in ("{m}", "{m}/thumbnail", "{m}/file", "{m}/views/0/thumbnail", "{m}/frames",
                 "{m}/frames/0/thumbnail", "{m}/extract?kind=text"):
        a = app_client.get("/v1/media/" + path.format(m=theirs), headers=g)
        b = app_client.get("/v1/media/" + path.format(m=unknown), headers=g)
        assert a.status_code == b.status_code == 404, (path, a.text, b.text)
        assert a.text.replace(theirs, "ID") == b.text.replace(unknown, "ID"), path
    a = app_client.get(f"/v1/jobs/{job}", headers=g)
    b = app_client.get("/v1/jobs/j_" + "0" * 24, headers=g)
    assert a.status_code == b.status_code == 404
    assert a.text.replace(job, "ID") == b.text.replace("j_" + "0" * 24, "ID")
    # the owner sees it
    assert app_client.get(f"/v1/media/{theirs}", headers=_h(keys["acme"])).status_code == 200
    # lists and searches hold only the asker's media
    assert [m["media_id"] for m in app_client.get("/v1/media", headers=g).json()] == [
        media["globex"]["media_id"]]
    for text in ("coffee", "cup", "cat", "a photo"):
        res = app_client.post("/v1/search", json={"text": text, "k": 10}, headers=g).json()
        assert {r["media_id"] for r in res["results"]} <= {media["globex"]["media_id"]}
    r = app_client.post("/v1/search", json={"media_id": theirs}, headers=g)
    assert r.status_code == 404
    r = app_client.post("/v1/search", json={"text": "coffee", "filters": {
        "media_ids": [theirs]}}, headers=g)
    assert r.status_code == 200 and r.json()["results"] == []
    # sessions: acme's session is not globex's
    sid = app_client.post("/v1/search", json={"text": "coffee"},
                          headers=_h(keys["acme"])).json()["session_id"]
    for resp in (app_client.get(f"/v1/sessions/{sid}", headers=g),
                 app_client.post(f"/v1/sessions/{sid}/messages", json={"question": "what?"},
                                 headers=g),
                 app_client.post(f"/v1/sessions/{sid}/messages",
                                 json={"question": "what?", "stream": True}, headers=g)):
        assert resp.status_code == 404, resp.text
    ok = app_client.post(f"/v1/sessions/{sid}/messages", json={"question": "what is it?"},
                         headers=_h(keys["acme"]))
    assert ok.status_code == 200


def test_scopes_and_locked_routes(app_client: TestClient, two_tenants: dict[str, Any],
                                  caplog) -> None:  # type: ignore[no-untyped-def]
    keys, media = two_tenants["keys"], two_tenants["media"]
    ro = _h(keys["acme_read"])
    r = app_client.post("/v1/media", files=[("files", ("x.png", _png((1, 2, 3))))], headers=ro)
    assert r.status_code == 403 and "scope" in r.json()["error"]["message"]
    assert app_client.post("/v1/search", json={"text": "coffee"}, headers=ro).status_code == 200
    assert app_client.get("/v1/keys", headers=_h(keys["acme"])).status_code == 403
    assert app_client.get("/metrics", headers=_h(keys["acme"])).status_code == 403
    # with keys on, nothing but /health and the page answers without one
    for path in ("/v1/media", f"/v1/media/{media['acme']['media_id']}", "/metrics", "/docs",
                 "/openapi.json", f"/v1/jobs/{media['acme']['job_id']}"):
        assert app_client.get(path).status_code == 401, path
        assert app_client.get(path, headers=_h("glk_wrong")).status_code == 401, path
    assert app_client.post("/v1/search", json={"text": "x"}).status_code == 401
    assert app_client.get("/health").status_code == 200
    assert app_client.get("/").status_code == 200
    assert app_client.get("/openapi.json", headers=ro).status_code == 200
    # a key in the query string is refused and never logged
    caplog.set_level(logging.DEBUG)
    secret = keys["acme"]
    r = app_client.get(f"/v1/media?token={secret}")
    assert r.status_code == 400 and secret not in r.text
    server_side = [rec for rec in caplog.records if not rec.name.startswith("httpx")]
    assert all(secret not in rec.getMessage() for rec in server_side)
    # uvicorn's access line for such a request, through the filter the app installs
    from service.guard import RedactQueryFilter

    rec = logging.LogRecord("uvicorn.access", logging.INFO, "", 0,
                            '%s - "%s %s HTTP/%s" %d', ("1.2.3.4:5", "GET",
                                                        f"/v1/media?token={secret}&x=1",
                                                        "1.1", 400), None)
    assert RedactQueryFilter().filter(rec) and secret not in rec.getMessage()
    assert "token=…&x=1" in rec.getMessage()


def test_admin_manages_keys_over_http(app_client: TestClient, settings, capsys) -> None:  # type: ignore[no-untyped-def]
    admin = _h(_cli_key(settings.data_dir, "ops", "admin", capsys))
    r = app_client.post("/v1/keys", json={"tenant": "initech", "scope": "write",
                                          "label": "uploader"}, headers=admin)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["key"].startswith("glk_") and new["created_at"][-1] in "Z0"
    listed = app_client.get("/v1/keys", headers=admin).json()
    assert new["id"] in [k["id"] for k in listed] and all("key" not in k for k in listed)
    assert app_client.get("/v1/media", headers=_h(new["key"])).json() == []
    assert app_client.delete(f"/v1/keys/{new['id']}", headers=admin).status_code == 200
    assert app_client.get("/v1/media", headers=_h(new["key"])).status_code == 401
    assert app_client.delete("/v1/keys/k_nope", headers=admin).status_code == 404
    r = app_client.post("/v1/keys", json={"tenant": "bad tenant!"}, headers=admin)
    assert r.status_code == 422


def test_no_key_mode_is_open_locally_and_refuses_other_addresses(
        app_client: TestClient, settings, capsys) -> None:  # type: ignore[no-untyped-def]
    from service.cli import main
    from service.keys_cli import refuse_open_bind

    assert app_client.get("/v1/media").status_code == 200  # embedded default, no keys
    assert refuse_open_bind(settings, "127.0.0.1") is None
    assert refuse_open_bind(settings, "::1") is None
    why = refuse_open_bind(settings, "0.0.0.0")
    assert why and "glimpse keys create" in why
    assert main(["serve", "--data-dir", str(settings.data_dir), "--host", "0.0.0.0"]) == 2
    assert "refusing to listen on 0.0.0.0" in capsys.readouterr().err
    _cli_key(settings.data_dir, "default", "admin", capsys)
    assert refuse_open_bind(settings, "0.0.0.0") is None
    assert app_client.get("/v1/media").status_code == 401  # locked the moment a key exists


def test_admin_key_from_the_environment(settings, cpu_model) -> None:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from indexer.settings import Settings
    from service.app import create_app

    with pytest.raises(ValueError, match="placeholder"):
        Settings(admin_key="change-me-to-a-long-random-string-please")
    secret = "0123456789abcdef" * 4
    settings.admin_key = secret
    with TestClient(create_app(core=Glimpse(settings, model=cpu_model))) as c:
        assert c.get("/v1/media").status_code == 401
        assert c.get("/v1/keys", headers=_h(secret)).status_code == 200
        assert c.get("/metrics", headers=_h(secret)).status_code == 200


def test_signed_urls_for_img_and_download_links(app_client: TestClient,
                                                two_tenants: dict[str, Any]) -> None:
    keys, media = two_tenants["keys"], two_tenants["media"]
    a = _h(keys["acme"])
    mid = media["acme"]["media_id"]
    m = app_client.get(f"/v1/media/{mid}", headers=a).json()
    for url in (m["thumbnail_url"], m["file_url"], m["views"][0]["thumbnail_url"]):
        assert "sig=" in url and "exp=" in url and keys["acme"] not in url
        r = app_client.get(url)  # no header: an <img> or a download link
        assert r.status_code == 200, (url, r.text)
        sep = "&" if "?" in url else "?"
        assert app_client.get(url + f"{sep}size=64").status_code == 200
    res = app_client.post("/v1/search", json={"text": "coffee"}, headers=a).json()["results"]
    assert res and app_client.get(res[0]["thumbnail_url"]).status_code == 200
    url = m["thumbnail_url"]
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert app_client.get(tampered).status_code == 401
    # the signature names its path: it opens nothing else
    other = media["globex"]["media_id"]
    assert app_client.get(url.replace(mid, other)).status_code == 401
    assert app_client.get(url.replace("/thumbnail", "/file")).status_code == 401
    # expired
    from service.signing import sign

    secret = app_client.app.state.keys.signing_secret()  # type: ignore[attr-defined]
    old = sign(f"/v1/media/{mid}/thumbnail", secret, 60, now=time.time() - 7200)
    assert app_client.get(old).status_code == 401
    # signatures only open the pixel routes, never the metadata or other tenants' lists
    path, qs = url.split("?", 1)
    assert app_client.get(f"/v1/media/{mid}?{qs}").status_code == 401
    assert app_client.get(f"/v1/media?{qs}").status_code == 401


def test_sessions_expire_are_capped_and_follow_ups_read_only_recent_turns(
        client: TestClient, indexed_samples: dict[str, str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    core = client.app.state.core  # type: ignore[attr-defined]
    conv = core.conversations
    conv.store.max_live = 3
    sids = [client.post("/v1/search", json={"text": f"coffee {i}"}).json()["session_id"]
            for i in range(5)]
    live = [client.get(f"/v1/sessions/{s}").status_code for s in sids]
    assert live == [404, 404, 200, 200, 200]
    assert conv.store.live_count(core.settings.tenant) == 3
    # follow-ups never read the whole conversation back
    read_all = []
    monkeypatch.setattr(conv.store, "turns", lambda sid: read_all.append(sid) or [])
    for q in ("how many people are in the first one?", "and the second one?", "the third?"):
        r = client.post(f"/v1/sessions/{sids[-1]}/messages", json={"question": q})
        assert r.status_code == 200, r.text
    assert read_all == []
    monkeypatch.undo()
    turns = client.get(f"/v1/sessions/{sids[-1]}").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3
    # idle expiry
    conv.store.idle_s = 0.0
    time.sleep(0.01)
    assert client.get(f"/v1/sessions/{sids[-1]}").status_code == 404
    r = client.post(f"/v1/sessions/{sids[-1]}/messages", json={"question": "and now?"})
    assert r.status_code == 404


def test_json_wait_jobs_helper_still_works_in_no_key_mode(client: TestClient) -> None:
    r = client.post("/v1/media", files=[("files", ("a.png", _png((9, 9, 9))))])
    done = wait_jobs(client, [r.json()["items"][0]["job_id"]])
    assert next(iter(done.values()))["status"] == "done"


def test_delete_needs_write_scope_and_the_owner(app_client: TestClient,
                                                two_tenants: dict[str, Any]) -> None:
    keys, media = two_tenants["keys"], two_tenants["media"]
    core = app_client.app.state.core  # type: ignore[attr-defined]
    mid = media["acme"]["media_id"]
    # globex uploads the very same bytes: one blob, two tenants' media
    same = app_client.post("/v1/media", headers=_h(keys["globex"]), files=[
        ("files", ("coffee.jpg", (SAMPLES / "coffee.jpg").read_bytes()))]).json()["items"][0]
    wait = time.monotonic() + 120
    while app_client.get(f"/v1/jobs/{same['job_id']}", headers=_h(keys["globex"])).json()[
            "status"] not in ("done", "failed"):
        assert time.monotonic() < wait
        time.sleep(0.1)
    sha = app_client.get(f"/v1/media/{mid}", headers=_h(keys["acme"])).json()["sha256"]
    assert app_client.delete(f"/v1/media/{mid}", headers=_h(keys["acme_read"])).status_code \
        == 403
    assert app_client.delete(f"/v1/media/{mid}", headers=_h(keys["globex"])).status_code == 404
    assert app_client.delete(f"/v1/media/{mid}", headers=_h(keys["acme"])).status_code == 204
    assert app_client.get(f"/v1/media/{mid}", headers=_h(keys["acme"])).status_code == 404
    res = app_client.post("/v1/search", json={"text": "coffee"}, headers=_h(keys["acme"]))
    assert mid not in {r["media_id"] for r in res.json()["results"]}
    # the other tenant's copy keeps its bytes
    assert core.blobs.exists(sha)
    f = app_client.get(f"/v1/media/{same['media_id']}/file", headers=_h(keys["globex"]))
    assert f.status_code == 200 and f.content == (SAMPLES / "coffee.jpg").read_bytes()
    assert app_client.delete(f"/v1/media/{same['media_id']}",
                             headers=_h(keys["globex"])).status_code == 204
    assert not core.blobs.exists(sha)
