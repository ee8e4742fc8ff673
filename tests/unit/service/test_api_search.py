"""Through the real app and the real cpu model: upload, index, search, explain, follow up."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from tests.unit.service.conftest import SAMPLES


@pytest.mark.parametrize(("query", "expected"), [
    ("a cat", "chelsea"),
    ("a cup of coffee", "coffee"),
    ("a rocket launch", "rocket"),
    ("an astronaut", "astronaut"),
])
def test_text_to_image_ranks_right_photo_first(client: TestClient,
                                               indexed_samples: dict[str, str],
                                               query: str, expected: str) -> None:
    r = client.post("/v1/search", json={"text": query, "k": 3})
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert res[0]["media_id"] == indexed_samples[expected], [x["caption"] for x in res]
    assert r.json()["stages"] == ["retrieve", "rerank"]
    assert 0.0 <= res[0]["relevance"] <= 1.0


def test_image_to_image_with_an_edited_copy(client: TestClient,
                                           indexed_samples: dict[str, str]) -> None:
    img = Image.open(SAMPLES / "chelsea.jpg").convert("RGB")
    w, h = img.size
    crop = ImageOps.mirror(img.crop((w // 10, h // 10, w - w // 10, h - h // 10)))
    buf = io.BytesIO()
    crop.save(buf, format="JPEG", quality=70)
    r = client.post("/v1/search/image", files={"image": ("q.jpg", buf.getvalue())},
                    data={"k": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["media_id"] == indexed_samples["chelsea"]


def test_search_by_existing_media_excludes_itself(client: TestClient,
                                                 indexed_samples: dict[str, str]) -> None:
    r = client.post("/v1/search", json={"media_id": indexed_samples["coffee"], "k": 5})
    assert r.status_code == 200, r.text
    ids = [x["media_id"] for x in r.json()["results"]]
    assert indexed_samples["coffee"] not in ids and len(ids) == 5


NUM = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
QUOTED = re.compile(r"'([^']+)'")


def _evidence_values(ev: list[dict]) -> tuple[set[str], set[str]]:  # type: ignore[type-arg]
    nums: set[str] = set()
    labels: set[str] = set()
    for e in ev:
        for k, v in e.items():
            if isinstance(v, bool):
                continue
            if isinstance(v, int | float):
                nums |= {f"{v:.2f}", f"{v:.1f}", str(v)}
            elif isinstance(v, list):
                nums |= {f"{x:.2f}" for x in v if isinstance(x, int | float)}
                nums |= {str(x) for x in v}
            elif isinstance(v, str):
                labels.add(v)
                if k == "label":
                    labels.add(v.lower())
    return nums, labels


def test_explanations_claim_only_stored_evidence(client: TestClient,
                                                indexed_samples: dict[str, str]) -> None:
    r = client.post("/v1/search", json={"text": "a kitty cat with text", "k": 4,
                                        "explain": True, "explain_m": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stages"] == ["retrieve", "rerank", "explain"]
    checked = 0
    for res in body["results"]:
        media = client.get(f"/v1/media/{res['media_id']}").json()
        view = next(v for v in media["views"] if v["view_id"] == res["view_id"])
        stored_labels = {t["label"] for t in view["tags"]} | {o["label"] for o in
                                                              view["objects"]} | {
            o["text"] for o in view["ocr"]}
        stored_scores = {round(t["score"], 3) for t in view["tags"]} | {
            round(o["score"], 3) for o in view["objects"]} | {round(o["score"], 3)
                                                              for o in view["ocr"]}
        assert res["explanation"], res
        for step in res["explanation"]:
            nums, labels = _evidence_values(step["evidence"])
            for n in NUM.findall(step["text"].replace(f"#{0}", "")):
                assert n in nums, (n, step)
            for q in QUOTED.findall(step["text"]):
                assert q in labels or q.lower() in labels, (q, step)
            for e in step["evidence"]:
                if e["type"] in ("tag", "object", "ocr"):
                    assert e["view_id"] == res["view_id"]
                    assert e["label"] in stored_labels, e
                    assert round(e["score"], 3) in stored_scores, e
                    checked += 1
    assert checked > 0


def test_follow_up_turns(client: TestClient, indexed_samples: dict[str, str]) -> None:
    r = client.post("/v1/search", json={"text": "a person", "k": 6})
    body = r.json()
    sid = body["session_id"]
    order = [x["media_id"] for x in body["results"]]
    astro = order.index(indexed_samples["astronaut"])
    page = order.index(indexed_samples["page"])
    ordinal = ["first", "second", "third", "fourth", "fifth", "sixth"]

    a = client.post(f"/v1/sessions/{sid}/messages",
                    json={"question": f"how many faces are in the {ordinal[astro]} one?"})
    assert a.status_code == 200, a.text
    ans = a.json()
    assert ans["result_indices"] == [astro]
    assert ans["answer"].startswith("'face': 1 in")
    assert len(ans["boxes"]) == 1

    b = client.post(f"/v1/sessions/{sid}/messages",
                    json={"question": f"what does the text say in result {page + 1}?"})
    assert "segmentation" in b.json()["answer"].lower()

    c = client.post(f"/v1/sessions/{sid}/messages", json={"question": "which of these has a cat?"})
    cat_pos = order.index(indexed_samples["chelsea"])
    assert c.json()["answer"].startswith(f"Result {cat_pos + 1} has evidence of 'cat'")
    assert c.json()["result_indices"] == [cat_pos]  # only the one the answer is about
    assert c.json()["checked_indices"] == list(range(len(order)))

    d = client.post(f"/v1/sessions/{sid}/messages",
                    json={"question": "what is the meaning of life?"})
    assert d.json()["answer"].startswith("I cannot tell from this evidence")

    s = client.get(f"/v1/sessions/{sid}").json()
    assert [t["role"] for t in s["turns"]] == ["user", "assistant"] * 4
    assert s["query"]["text"] == "a person"


def test_follow_up_streams_server_sent_events(client: TestClient,
                                             indexed_samples: dict[str, str]) -> None:
    sid = client.post("/v1/search", json={"text": "coffee"}).json()["session_id"]
    with client.stream("POST", f"/v1/sessions/{sid}/messages",
                       json={"question": "what colour is the background of the first one?",
                             "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = re.findall(r"^event: (\w+)$", text, re.M)
    assert events[-2:] == ["answer", "done"] and "step" in events


def test_unknown_session_and_bad_question(client: TestClient) -> None:
    assert client.post("/v1/sessions/nope/messages", json={"question": "hi"}).status_code == 404
    r = client.post("/v1/sessions/nope/messages", json={"question": ""})
    assert r.status_code == 422 and "question" in r.json()["error"]["message"]


