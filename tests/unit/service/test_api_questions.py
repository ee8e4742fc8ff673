"""Follow-up questions per type on generated images with known content, answered by the
cpu backend from measured evidence only."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageFont

from tests.unit.service.conftest import upload, wait_jobs


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def shapes_image() -> Image.Image:
    """Two red squares left of a blue circle, on white."""
    im = Image.new("RGB", (640, 400), "white")
    d = ImageDraw.Draw(im)
    d.rectangle([40, 150, 120, 230], fill=(220, 30, 30))
    d.rectangle([170, 150, 250, 230], fill=(220, 30, 30))
    d.ellipse([430, 130, 560, 260], fill=(30, 60, 220))
    return im


def sign_image() -> Image.Image:
    im = Image.new("RGB", (640, 300), (245, 245, 245))
    d = ImageDraw.Draw(im)
    d.text((60, 110), "OPEN 24 HOURS", fill=(10, 10, 10), font=ImageFont.load_default(size=64))
    return im


@pytest.fixture()
def session(client: TestClient) -> tuple[str, dict[str, int]]:
    r = upload(client, [("shapes.png", _png(shapes_image())), ("sign.png", _png(sign_image()))])
    assert r.status_code == 202, r.text
    wait_jobs(client, [i["job_id"] for i in r.json()["items"]])
    body = client.post("/v1/search", json={"text": "red square", "k": 2}).json()
    pos = {x["filename"]: i + 1 for i, x in enumerate(body["results"])}
    assert set(pos) == {"shapes.png", "sign.png"}
    return body["session_id"], pos


def ask(client: TestClient, sid: str, q: str) -> dict:  # type: ignore[type-arg]
    r = client.post(f"/v1/sessions/{sid}/messages", json={"question": q})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_counting_relations_position_and_colour(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    sid, pos = session
    n = pos["shapes.png"]
    a = ask(client, sid, f"how many red squares are in result {n}?")
    assert a["answer"].startswith("'red square': 2 in"), a
    assert len(a["boxes"]) == 2
    a = ask(client, sid, f"are the red squares left of the blue circle in result {n}?")
    assert a["answer"].startswith("Yes — all 2 red squares are left of the blue circle"), a
    assert {b["label"] for b in a["boxes"]} == {"red square", "blue circle"}
    a = ask(client, sid, f"is the blue circle left of the red square in result {n}?")
    assert a["answer"].startswith("No"), a
    a = ask(client, sid, f"where is the blue circle in result {n}?")
    assert "'blue circle' is at the right" in a["answer"], a
    x0, y0, x1, y1 = a["boxes"][0]["box"]
    assert x0 == pytest.approx(430, abs=6) and x1 == pytest.approx(560, abs=6)
    a = ask(client, sid, f"what colour is the circle in result {n}?")
    assert "the circle is blue" in a["answer"], a
    a = ask(client, sid, f"what colour is the background of result {n}?")
    assert "mostly white" in a["answer"], a
    a = ask(client, sid, f"is there a cat in result {n}?")
    assert a["answer"].startswith("No evidence of 'cat'"), a


def test_text_and_presence_on_a_sign(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    sid, pos = session
    n = pos["sign.png"]
    a = ask(client, sid, f"what does the sign say in result {n}?")
    assert "OPEN 24 HOURS" in a["answer"].upper(), a
    assert a["boxes"] and a["steps"][0]["evidence"][0]["type"] == "ocr"
    a = ask(client, sid, "which of these has a sign?")
    assert a["result_indices"] == [n - 1], a
    a = ask(client, sid, "the one with the sign: how many people are in it?")
    assert a["result_indices"] == [n - 1] and "0 in result" in a["answer"], a


def test_follow_up_sees_a_media_re_indexed_while_the_session_is_open(  # type: ignore[no-untyped-def]
        client: TestClient, session) -> None:
    """Follow-ups cache their results' evidence; a re-index (here: the stored description of
    the sign replaced, as a worker's re-index would) must not leave the session answering
    from the old one."""
    from indexer.domain import Box, OcrLine
    from indexer.stores.catalog import NewView

    sid, pos = session
    n = pos["sign.png"]
    assert "OPEN 24 HOURS" in ask(client, sid, f"what does the sign say in result {n}?")[
        "answer"].upper()
    core = client.app.state.core  # type: ignore[attr-defined]
    media_id = next(m["media_id"] for m in client.get("/v1/media").json()
                    if m["filename"] == "sign.png")
    (view,) = core.catalog.views_of(media_id)
    d = view.description
    d.ocr = [OcrLine("CLOSED ON SUNDAYS", 0.99, Box(60, 110, 600, 180))]
    core.catalog.replace_views(media_id, view.tenant, [NewView(
        idx=view.idx, kind=view.kind, description=d, width=view.width, height=view.height)])
    core.catalog.set_media_status(media_id, "ready")
    answer = ask(client, sid, f"what does the sign say in result {n}?")["answer"].upper()
    assert "CLOSED ON SUNDAYS" in answer and "OPEN 24" not in answer, answer
