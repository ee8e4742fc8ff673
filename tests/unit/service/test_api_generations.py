"""/v1/generations end to end on the cpu backend: what a user sees (status, the image stored
as its own media, provenance, checks), the same seed giving the same image, a missing concept
named, bad input refused, search filtering generated images, and tenants kept apart."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.conftest import SAMPLES, upload, wait_jobs


def _wait_generation(client: TestClient, gid: str, headers: dict[str, str] | None = None,
                     timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/generations/{gid}", headers=headers or {})
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


@pytest.fixture()
def cat_and_cup(client: TestClient) -> dict[str, str]:
    files = [(n, (SAMPLES / n).read_bytes()) for n in ("chelsea.jpg", "coffee.jpg")]
    r = upload(client, files)
    assert r.status_code == 202, r.text
    items = r.json()["items"]
    wait_jobs(client, [i["job_id"] for i in items])
    return {i["filename"]: i["media_id"] for i in items}


def _generate(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/generations", json=body)
    assert r.status_code == 202, r.text
    acc = r.json()
    assert acc["generation_id"].startswith("g_") and acc["job_id"].startswith("j_")
    g = _wait_generation(client, acc["generation_id"])
    # the job id answers on /v1/jobs too, with the generation's status and first image
    j = client.get(f"/v1/jobs/{acc['job_id']}")
    assert j.status_code == 200, j.text
    assert {k: j.json()[k] for k in ("kind", "generation_id", "status", "media_id")} == {
        "kind": "generation", "generation_id": acc["generation_id"], "status": g["status"],
        "media_id": (g["media_ids"] or [None])[0]}
    return g


def test_generate_store_search_and_repeat(client: TestClient, cat_and_cup: dict[str, str]
                                          ) -> None:
    g = _generate(client, {"prompt": "a cat next to a cup", "seed": 7, "size": "384x256"})
    assert g["status"] == "done", g
    assert len(g["media_ids"]) == 1
    res = g["results"][0]
    used = {p["media_id"] for p in res["provenance"] if p["role"] == "object"}
    assert used == {cat_and_cup["chelsea.jpg"], cat_and_cup["coffee.jpg"]}
    for p in res["provenance"]:
        assert p["cut"] in ("alpha", "grabcut", "box") and len(p["placed"]) == 4
    kinds = [(c["kind"], c["constraint"]) for c in res["checks"]]
    assert kinds == [("count", "1 cat"), ("count", "1 cup"), ("relation", "cat next to cup")]
    for c in res["checks"]:  # a satisfied check always carries the evidence it rests on
        assert isinstance(c["satisfied"], bool)
        if c["satisfied"]:
            assert c["evidence"]
    assert res["satisfied"] == all(c["satisfied"] for c in res["checks"])
    # the image is media of its own, indexed by the normal pipeline, never a source's id
    mid = g["media_ids"][0]
    assert mid not in cat_and_cup.values()
    wait_jobs(client, [res["ingest_job_id"]])
    m = client.get(f"/v1/media/{mid}").json()
    assert m["status"] == "ready" and m["width"] == 384 and m["height"] == 256
    assert m["origin"] == "generated"
    assert client.get(f"/v1/media/{cat_and_cup['chelsea.jpg']}").json()["origin"] == "upload"
    png = client.get(f"/v1/media/{mid}/file").content
    assert Image.open(io.BytesIO(png)).size == (384, 256)
    # searchable, and excluded or selected by the filter
    def ids(filters: dict[str, Any]) -> list[str]:
        r = client.post("/v1/search", json={"text": "a cat", "k": 10, "filters": filters})
        assert r.status_code == 200, r.text
        return [x["media_id"] for x in r.json()["results"]]
    assert mid in ids({})
    assert mid not in ids({"generated": False})
    assert ids({"generated": True}) == [mid]
    # same seed, same index -> the same pixels, stored as a new media of its own
    again = _generate(client, {"prompt": "a cat next to a cup", "seed": 7, "size": "384x256"})
    assert again["media_ids"][0] != mid
    png2 = client.get(f"/v1/media/{again['media_ids'][0]}/file").content
    a = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(png2)).convert("RGB"))
    assert np.array_equal(a, b)
    assert again["results"][0]["checks"] == res["checks"]
    other = _generate(client, {"prompt": "a cat next to a cup", "seed": 8, "size": "384x256"})
    c = np.asarray(Image.open(io.BytesIO(client.get(
        f"/v1/media/{other['media_ids'][0]}/file").content)).convert("RGB"))
    assert not np.array_equal(a, c)


def test_generated_images_are_never_sources(client: TestClient, cat_and_cup: dict[str, str]
                                            ) -> None:
    first = _generate(client, {"prompt": "a cat", "seed": 1})
    wait_jobs(client, [first["results"][0]["ingest_job_id"]])
    second = _generate(client, {"prompt": "two cats", "seed": 2})
    used = {p["media_id"] for p in second["results"][0]["provenance"]}
    assert used == {cat_and_cup["chelsea.jpg"]}


def test_missing_concept_is_named_and_nothing_is_made(client: TestClient,
                                                      cat_and_cup: dict[str, str]) -> None:
    r = client.post("/v1/generations", json={"prompt": "a cat next to a giraffe"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "missing_concept" and "giraffe" in err["message"]
    assert err["detail"]["missing"] == ["giraffe"]
    assert client.get("/v1/generations").json()["generations"] == []


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"prompt": ""}, 400, "empty"),
    ({"prompt": "a cat " * 1666 + "cats"}, 400, "characters"),
    ({"prompt": "a cat", "n": 1000}, 400, "between 1 and 4"),
    ({"prompt": "a cat", "size": 100000}, 400, "out of range"),
    ({"prompt": "a cat", "size": "100000x100000"}, 400, "out of range"),
    ({"prompt": "a cat", "size": "big"}, 400, "WIDTHxHEIGHT"),
    ({"prompt": "a cat", "backend": "dall-e"}, 400, "unknown generation backend"),
    ({"prompt": "a cat", "seed": -1}, 422, "seed"),
    ({"prompt": "a cat left of a dog and the dog left of the cat"}, 400, "contradict"),
])
def test_bad_requests_are_4xx_with_a_message(client: TestClient, body: dict[str, Any],
                                             status: int, words: str) -> None:
    r = client.post("/v1/generations", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]


def test_unknown_generation_is_404(client: TestClient) -> None:
    assert client.get("/v1/generations/g_" + "0" * 24).status_code == 404
    assert client.get("/v1/generations/nope").status_code == 422


def test_tenants_generate_from_their_own_media_only(settings, cpu_model, capsys,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    from indexer.context import Glimpse
    from service.app import create_app
    from tests.unit.service.test_keys_tenants import _cli_key, _h

    settings.auth.key_cache_s = 0.0
    with TestClient(create_app(core=Glimpse(settings, model=cpu_model))) as c:
        keys = {t: _cli_key(settings.data_dir, t, "write", capsys) for t in ("acme", "globex")}
        jobs = []
        for tenant, name in (("acme", "coffee.jpg"), ("globex", "chelsea.jpg")):
            r = c.post("/v1/media", files=[("files", (name, (SAMPLES / name).read_bytes()))],
                       headers=_h(keys[tenant]))
            jobs.append((tenant, r.json()["items"][0]["job_id"]))
        for tenant, job in jobs:
            deadline = time.monotonic() + 120
            while c.get(f"/v1/jobs/{job}", headers=_h(keys[tenant])).json()["status"] not in (
                    "done", "failed"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        # acme has no cat: globex's cat photo is not acme's to compose with
        r = c.post("/v1/generations", json={"prompt": "a cat"}, headers=_h(keys["acme"]))
        assert r.status_code == 422 and r.json()["error"]["detail"]["missing"] == ["cat"]
        r = c.post("/v1/generations", json={"prompt": "a cat", "seed": 3},
                   headers=_h(keys["globex"]))
        assert r.status_code == 202, r.text
        gid, jid = r.json()["generation_id"], r.json()["job_id"]
        g = _wait_generation(c, gid, _h(keys["globex"]))
        assert g["status"] == "done"
        # acme cannot see globex's generation: exactly like an unknown id
        r = c.get(f"/v1/generations/{gid}", headers=_h(keys["acme"]))
        assert r.status_code == 404
        r = c.get(f"/v1/jobs/{jid}", headers=_h(keys["acme"]))
        unknown = c.get("/v1/jobs/j_" + "0" * 24, headers=_h(keys["acme"]))
        assert r.status_code == unknown.status_code == 404
        assert r.json()["error"]["message"].replace(jid, "X") == \
            unknown.json()["error"]["message"].replace("j_" + "0" * 24, "X")
        assert c.get(f"/v1/jobs/{jid}", headers=_h(keys["globex"])).json()["kind"] == \
            "generation"
        assert c.get("/v1/generations", headers=_h(keys["acme"])).json()["generations"] == []
        assert c.post("/v1/generations", json={"prompt": "a cat"}).status_code == 401


def test_a_backend_that_is_not_configured_is_a_clear_503(client: TestClient) -> None:
    r = client.post("/v1/generations", json={"prompt": "a cat", "backend": "diffusion"})
    assert r.status_code == 503 and "DIFFUSION_PATH" in r.json()["error"]["message"]
    r = client.post("/v1/generations", json={"prompt": "a cat", "backend": "openai"})
    assert r.status_code == 503 and "IMAGES_BASE_URL" in r.json()["error"]["message"]
