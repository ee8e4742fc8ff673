"""Uploads through the real app: bad input gets a clear 4xx per file, videos and documents
index into moments and pages, extraction is stored."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.conftest import SAMPLES, upload, wait_jobs


def _png(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_health_and_docs(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["queue"] == "in-process"
    assert client.get("/docs").status_code == 200
    assert "/v1/search" in client.get("/openapi.json").json()["paths"]
    m = client.get("/metrics")
    assert m.status_code == 200 and "glimpse_views 0" in m.text


def test_each_bad_file_gets_its_own_4xx_and_others_proceed(client: TestClient) -> None:
    good = _jpeg_bytes(SAMPLES / "coffee.jpg")
    truncated = good[: len(good) // 3]
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    r = upload(client, [
        ("ok.jpg", good), ("empty.jpg", b""), ("notes.jpg", b"just some text, not an image"),
        ("half.jpg", truncated), ("bomb.png", bomb.getvalue()), ("thin.png", _png(size=(3000, 20))),
    ])
    assert r.status_code == 202, r.text
    items = {i["filename"]: i for i in r.json()["items"]}
    assert items["ok.jpg"]["status"] == "queued" and items["ok.jpg"]["error"] is None
    expect = {"empty.jpg": 400, "notes.jpg": 415, "half.jpg": 422, "bomb.png": 413,
              "thin.png": 415}
    for name, status in expect.items():
        err = items[name]["error"]
        assert err is not None and err["detail"]["status"] == status, (name, err)
        assert err["message"].startswith(name), err
    done = wait_jobs(client, [items["ok.jpg"]["job_id"]])
    assert next(iter(done.values()))["status"] == "done"
    # nothing half-written: only the good file is in the catalog
    media = client.get("/v1/media").json()
    assert [m["filename"] for m in media] == ["ok.jpg"]


def test_single_bad_file_gets_its_status_code(client: TestClient) -> None:
    r = upload(client, [("notes.txt", b"hello")])
    assert r.status_code == 415
    assert "not a supported image" in r.json()["error"]["message"]
    assert client.post("/v1/media", files=[]).status_code in (400, 422)
    r = client.post("/v1/media", content=b"{}", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_oversize_refused_while_streaming(client: TestClient) -> None:
    client.app.state.core.settings.limits.max_upload_bytes = 50_000  # type: ignore[attr-defined]
    big = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    assert len(buf.getvalue()) > 50_000
    r = upload(client, [("big.png", buf.getvalue()), ("small.png", _png())])
    assert r.status_code == 202
    items = {i["filename"]: i for i in r.json()["items"]}
    assert items["big.png"]["error"]["detail"]["status"] == 413
    assert items["small.png"]["error"] is None
    tmp = client.app.state.core.blobs.tmp  # type: ignore[attr-defined]
    assert list(tmp.iterdir()) == []  # no temp file left behind


def test_duplicate_upload_returns_same_media_and_does_no_work(client: TestClient) -> None:
    data = _jpeg_bytes(SAMPLES / "rocket.jpg")
    a = upload(client, [("rocket.jpg", data)]).json()["items"][0]
    wait_jobs(client, [a["job_id"]])
    b = upload(client, [("again.jpg", data)]).json()["items"][0]
    assert b["media_id"] == a["media_id"] and b["duplicate"] is True
    assert b["job_id"] == a["job_id"] and b["status"] == "ready"
    m = client.get(f"/v1/media/{a['media_id']}").json()
    assert m["status"] == "ready" and len(m["views"]) == 1
    thumb = client.get(m["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert client.get("/v1/media/m_nope").status_code == 404
    assert client.get("/v1/jobs/j_nope").status_code == 404


def test_search_bad_requests_are_4xx(client: TestClient) -> None:
    assert client.post("/v1/search", json={}).status_code == 400
    # declared bodies: FastAPI names the field that failed (422)
    assert client.post("/v1/search", json={"text": "x", "k": 0}).status_code == 422
    assert client.post("/v1/search", content=b"not json",
                       headers={"content-type": "application/json"}).status_code == 422
    r = client.post("/v1/search/image", files={"image": ("q.jpg", b"not an image")})
    assert r.status_code == 415
    assert client.post("/v1/search", json={"media_id": "m_nope"}).status_code == 404


def _video_of(paths: list[Path], seconds_each: float, out: Path, fps: int = 10) -> None:
    with av.open(str(out), "w") as c:
        s = c.add_stream("h264", rate=fps)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for p in paths:
            img = Image.open(p).convert("RGB").resize((320, 240))
            for _ in range(int(seconds_each * fps)):
                for pkt in s.encode(av.VideoFrame.from_image(img)):
                    c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_video_moment_search_and_frames(client: TestClient, tmp_path: Path) -> None:
    vid = tmp_path / "clip.mp4"
    _video_of([SAMPLES / "coffee.jpg", SAMPLES / "chelsea.jpg", SAMPLES / "rocket.jpg"], 2.0,
              vid)
    r = upload(client, [("clip.mp4", vid.read_bytes()),
                        ("astronaut.jpg", _jpeg_bytes(SAMPLES / "astronaut.jpg"))])
    assert r.status_code == 202, r.text
    items = {i["filename"]: i for i in r.json()["items"]}
    assert items["clip.mp4"]["kind"] == "video"
    done = wait_jobs(client, [i["job_id"] for i in items.values()])
    assert all(d["status"] == "done" for d in done.values()), done
    mid = items["clip.mp4"]["media_id"]
    frames = client.get(f"/v1/media/{mid}/frames").json()["frames"]
    assert len(frames) == 3
    starts = [f["t_start"] for f in frames]
    assert starts[0] == pytest.approx(0.0, abs=0.15)
    assert starts[1] == pytest.approx(2.0, abs=0.15) and starts[2] == pytest.approx(4.0, abs=0.15)
    assert client.get(frames[1]["thumbnail_url"]).status_code == 200
    res = client.post("/v1/search", json={"text": "a cat", "k": 3}).json()["results"]
    top = res[0]
    assert top["media_id"] == mid and top["kind"] == "video"
    assert top["t_start"] == pytest.approx(2.0, abs=0.15)
    assert top["t_end"] == pytest.approx(4.0, abs=0.15)
    f = client.get(f"/v1/media/{mid}/file", headers={"Range": "bytes=0-99"})
    assert f.status_code == 206 and len(f.content) == 100
    views = client.get(f"/v1/media/{mid}").json()["views"]
    summary = [v for v in views if v["kind"] == "summary"]
    assert len(summary) == 1 and summary[0]["t_start"] == 0.0
    # the summary is built from the shots' evidence only: every tag comes from a shot
    shot_tags = {t["label"] for v in views if v["kind"] == "frame" for t in v["tags"]}
    assert {t["label"] for t in summary[0]["tags"]} <= shot_tags
    sid = client.post("/v1/search", json={"text": "a cat", "k": 3}).json()["session_id"]
    a = client.post(f"/v1/sessions/{sid}/messages",
                    json={"question": "when does the cat first appear in the video?"}).json()
    assert "0:02" in a["answer"], a


def test_video_bad_input(client: TestClient, tmp_path: Path) -> None:
    vid = tmp_path / "clip.mp4"
    _video_of([SAMPLES / "coffee.jpg"], 1.0, vid)
    data = vid.read_bytes()
    r = upload(client, [("cut.mp4", data[: len(data) // 4]),
                        ("fake.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)])
    items = {i["filename"]: i for i in r.json()["items"]}
    for name in ("cut.mp4", "fake.mp4"):
        it = items[name]
        if it["error"] is None:  # accepted at upload: the job must fail cleanly instead
            d = wait_jobs(client, [it["job_id"]])[it["job_id"]]
            assert d["status"] == "failed" and d["error"], d
        else:
            assert it["error"]["detail"]["status"] in (415, 422), it


def _pdf_with_text(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with PdfPages(path) as pdf:
        for words in (["Invoice No: 4711", "Total: 1234.50 EUR", "ACME Corporation"],
                      ["Quarterly report", "Revenue grew in every region"]):
            fig = Figure(figsize=(6, 4))
            for i, w in enumerate(words):
                fig.text(0.1, 0.8 - i * 0.15, w, fontsize=16)
            pdf.savefig(fig)


def test_pdf_pages_searchable_and_extraction_stored(client: TestClient, tmp_path: Path) -> None:
    pdf = tmp_path / "doc.pdf"
    _pdf_with_text(pdf)
    r = upload(client, [("doc.pdf", pdf.read_bytes()),
                        ("chelsea.jpg", _jpeg_bytes(SAMPLES / "chelsea.jpg"))])
    items = {i["filename"]: i for i in r.json()["items"]}
    assert items["doc.pdf"]["kind"] == "document"
    done = wait_jobs(client, [i["job_id"] for i in items.values()])
    assert all(d["status"] == "done" for d in done.values()), done
    mid = items["doc.pdf"]["media_id"]
    m = client.get(f"/v1/media/{mid}").json()
    assert [v["page"] for v in m["views"]] == [1, 2]
    res = client.post("/v1/search", json={"text": "invoice from ACME", "k": 2}).json()
    assert res["results"][0]["media_id"] == mid and res["results"][0]["page"] == 1
    only_docs = client.post("/v1/search", json={"text": "cat", "filters": {"kind": ["document"]}})
    assert {x["kind"] for x in only_docs.json()["results"]} == {"document"}
    kv = client.get(f"/v1/media/{mid}/extract", params={"kind": "kv", "view": 0}).json()
    assert kv["cached"] is False and kv["source"] in ("text_layer", "ocr")
    keys = {p["key"].lower(): p for p in kv["pairs"]}
    assert "invoice no" in keys and keys["total"]["value"].startswith("1234.50")
    again = client.get(f"/v1/media/{mid}/extract", params={"kind": "kv", "view": 0}).json()
    assert again["cached"] is True and again["pairs"] == kv["pairs"]
    bad = client.get(f"/v1/media/{mid}/extract", params={"kind": "poem"})
    assert bad.status_code == 422
    missing = client.get(f"/v1/media/{mid}/extract", params={"kind": "kv", "view": 7})
    assert missing.status_code == 404


def test_corrupt_and_encrypted_pdf_rejected(client: TestClient) -> None:
    r = upload(client, [("broken.pdf", b"%PDF-1.7\n" + b"garbage" * 50)])
    assert r.status_code in (415, 422), r.text


def test_vectors_lost_in_a_crash_are_rebuilt_at_start(settings, cpu_model) -> None:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from service.app import create_app

    with TestClient(create_app(core=Glimpse(settings, model=cpu_model))) as c:
        item = upload(c, [("coffee.jpg", _jpeg_bytes(SAMPLES / "coffee.jpg"))]).json()["items"][0]
        wait_jobs(c, [item["job_id"]])
        core = c.app.state.core  # type: ignore[attr-defined]
        core.vectors.delete_media(item["media_id"])  # as if the process died before a flush
        core.vectors.flush()
    with TestClient(create_app(core=Glimpse(settings, model=cpu_model))) as c:
        runner = c.app.state.enqueuer  # type: ignore[attr-defined]
        assert runner.wait_idle(120)
        res = c.post("/v1/search", json={"text": "coffee", "k": 1}).json()["results"]
        assert res and res[0]["media_id"] == item["media_id"]


def _bar_chart_png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    ax.bar(["north", "south", "east", "west"], [12, 30, 21, 7], color="tab:blue")
    ax.set_title("Sales by region")
    ax.set_ylabel("units")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_kind_filter_tells_charts_from_photos(client: TestClient) -> None:
    r = upload(client, [("chart.png", _bar_chart_png()),
                        ("coffee.jpg", _jpeg_bytes(SAMPLES / "coffee.jpg"))])
    items = {i["filename"]: i for i in r.json()["items"]}
    wait_jobs(client, [i["job_id"] for i in items.values()])
    charts = client.post("/v1/search", json={"text": "sales", "filters": {"kind": ["chart"]}})
    assert [x["filename"] for x in charts.json()["results"]] == ["chart.png"]
    photos = client.post("/v1/search", json={"text": "sales", "filters": {"kind": ["photo"]}})
    assert [x["filename"] for x in photos.json()["results"]] == ["coffee.jpg"]
    both = client.post("/v1/search", json={"text": "sales", "filters": {"kind": ["image"]}})
    assert {x["filename"] for x in both.json()["results"]} == {"chart.png", "coffee.jpg"}
    chart = client.get(f"/v1/media/{items['chart.png']['media_id']}/extract",
                       params={"kind": "chart"}).json()
    assert chart["type"] == "bar"
    values = {p[0]: p[1] for s in chart["series"] for p in s["points"]}
    assert values.get("south") == pytest.approx(30, rel=0.05), chart
