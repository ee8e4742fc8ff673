"""The generation backend against a real OpenAI-compatible HTTP server on 127.0.0.1: vectors
come from the local cpu model, reranking and follow-up answers from the server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.models.test_openai_backend import FakeServer, completion, sse
from tests.unit.service.conftest import SAMPLES, upload, wait_jobs


def _texts(req: dict[str, Any]) -> str:
    out = []
    for m in req.get("messages", []):
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out += [p.get("text", "") for p in c if isinstance(p, dict)]
    return "\n".join(out).lower()


@pytest.fixture()
def fake_glm() -> Iterator[FakeServer]:
    s = FakeServer()

    def reply(req: dict[str, Any]):  # type: ignore[no-untyped-def]
        t = _texts(req)
        if "yes or no" in t:
            return completion("yes" if "cat" in t and len(req["messages"]) else "no")
        if req.get("stream"):
            return sse([{"reasoning_content": "Image 1 shows a cat."},
                        {"content": "The cat "}, {"content": "sits on the left."}])
        return completion("The cat sits on the left <|begin_of_box|>[100,200,500,900]"
                          "<|end_of_box|>.",
                          reasoning="Image 1 shows a cat.\nIts body is in the left half.")

    s.script = [reply] * 200
    yield s
    s.close()


@pytest.fixture()
def openai_client(tmp_path, cpu_model, fake_glm: FakeServer) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from indexer.models.composite import CompositeModel
    from indexer.models.openai_backend import OpenAIModel
    from indexer.settings import Settings
    from service.app import create_app

    settings = Settings(data_dir=tmp_path / "d", environment="test",
                        model={"backend": "openai", "base_url": fake_glm.base_url,
                               "served_name": "glm-4.5v", "timeout_s": 10})
    model = CompositeModel(cpu_model, OpenAIModel(settings.model, backoff_s=0.01))
    with TestClient(create_app(core=Glimpse(settings, model=model))) as c:
        yield c


def test_rerank_and_follow_up_go_to_the_server(openai_client: TestClient,
                                               fake_glm: FakeServer) -> None:
    c = openai_client
    r = upload(c, [(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob("*.jpg"))[:3]])
    wait_jobs(c, [i["job_id"] for i in r.json()["items"]])
    body = c.post("/v1/search", json={"text": "a cat", "k": 3, "rerank_n": 3}).json()
    assert body["stages"] == ["retrieve", "rerank"]
    scored = [q for q in fake_glm.requests if "yes or no" in _texts(q)]
    assert len(scored) == 3  # one model call per reranked candidate
    assert all(any(p.get("type") == "image_url" for m in q["messages"]
                   if isinstance(m.get("content"), list) for p in m["content"])
               for q in scored)  # the real pixels were sent
    a = c.post(f"/v1/sessions/{body['session_id']}/messages",
               json={"question": "where is the cat in the first one?"}).json()
    assert a["answer"].startswith("The cat sits on the left")
    assert [s["text"] for s in a["steps"]][:1] == ["Image 1 shows a cat."]
    assert len(a["boxes"]) == 1
    x0, y0, x1, y1 = a["boxes"][0]["box"]
    assert x0 < x1 and y0 < y1  # 0-1000 normalised coordinates mapped onto view pixels
    sent = json.dumps(fake_glm.requests[-1])
    assert "where is the cat" in sent


def test_video_follow_up_goes_to_the_native_video_input(openai_client: TestClient,
                                                        fake_glm: FakeServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.service.test_api_media import _video_of

    vid = tmp_path / "clip.mp4"
    _video_of([SAMPLES / "coffee.jpg", SAMPLES / "chelsea.jpg", SAMPLES / "rocket.jpg"], 2.0,
              vid)
    r = upload(openai_client, [("clip.mp4", vid.read_bytes())])
    wait_jobs(openai_client, [r.json()["items"][0]["job_id"]])
    body = openai_client.post("/v1/search", json={"text": "a cat", "k": 1, "rerank": False})
    sid = body.json()["session_id"]
    a = openai_client.post(f"/v1/sessions/{sid}/messages",
                           json={"question": "what happens right after the cat?"}).json()
    assert a["answer"].startswith("The cat sits")
    req = fake_glm.requests[-1]
    parts = req["messages"][-1]["content"]
    stamps = [p["text"] for p in parts if p.get("type") == "text" and p["text"].startswith(
        "Frame at")]
    assert stamps == ["Frame at 0.0s:", "Frame at 2.0s:", "Frame at 4.0s:"]
    assert sum(p.get("type") == "image_url" for p in parts) == 3


def test_follow_up_streams_tokens_from_the_server(openai_client: TestClient) -> None:
    import re

    c = openai_client
    r = upload(c, [(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob("*.jpg"))[:2]])
    wait_jobs(c, [i["job_id"] for i in r.json()["items"]])
    sid = c.post("/v1/search", json={"text": "a cat", "k": 2, "rerank": False}).json()[
        "session_id"]
    with c.stream("POST", f"/v1/sessions/{sid}/messages",
                  json={"question": "what is in the first one?", "stream": True}) as resp:
        text = "".join(resp.iter_text())
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", text, re.M)
    kinds = [e for e, _ in events]
    assert kinds[:3] == ["delta", "delta", "delta"] and kinds[-2:] == ["answer", "done"]
    deltas = [json.loads(d)["text"] for e, d in events if e == "delta"]
    assert "".join(deltas[1:]) == "The cat sits on the left."
    answer = json.loads(next(d for e, d in events if e == "answer"))
    assert answer["answer"] == "The cat sits on the left."
    assert answer["steps"][0]["text"] == "Image 1 shows a cat."
    turns = c.get(f"/v1/sessions/{sid}").json()["turns"]
    assert turns[-1]["text"] == "The cat sits on the left."
