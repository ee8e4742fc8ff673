"""Requests an attacker (or a sloppy client) sends: each must be a 4xx with a clear message,
never a 500, a hang, a lost upload or a server path in the answer."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.conftest import SAMPLES, upload, wait_jobs


def _png(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _error(r) -> str:  # type: ignore[no-untyped-def]
    body = r.json()
    assert "error" in body, body
    return str(body["error"]["message"])


def test_naive_date_filters_are_utc_and_every_timestamp_has_a_zone(
        client: TestClient, indexed_samples: dict[str, str]) -> None:
    # exactly what the web page's date inputs send
    r = client.post("/v1/search", json={"text": "coffee", "filters": {
        "date_from": "2000-01-01T00:00:00", "date_to": "2999-01-01T00:00:00"}})
    assert r.status_code == 200, r.text
    assert r.json()["results"], "naive bounds around now must keep every result"
    r = client.post("/v1/search", json={"text": "coffee", "filters": {
        "date_from": "2999-01-01T00:00:00"}})
    assert r.status_code == 200 and r.json()["results"] == []
    mid = next(iter(indexed_samples.values()))
    stamps = [client.get(f"/v1/media/{mid}").json()["created_at"],
              client.get("/v1/media").json()[0]["created_at"]]
    job = client.post("/v1/media", files=[("files", ("c.png", _png()))]).json()
    j = client.get(f"/v1/jobs/{job['items'][0]['job_id']}").json()
    stamps.append(j["created_at"])
    sid = client.post("/v1/search", json={"text": "coffee"}).json()["session_id"]
    stamps.append(client.get(f"/v1/sessions/{sid}").json()["created_at"])
    for s in stamps:
        assert re.search(r"(Z|[+-]\d\d:\d\d)$", s), f"timestamp without a zone: {s}"


def test_absurd_numbers_are_4xx(client: TestClient) -> None:
    for body in ({"text": "x", "k": 10**30}, {"text": "x", "k": -1}, {"text": "x", "k": 1e300},
                 {"text": "x", "rerank_n": 10**30}):
        r = client.post("/v1/search", json=body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        assert _error(r)
    for q in ("offset=100000000000000000000", "limit=100000000000000000000", "offset=-1",
              "limit=abc"):
        r = client.get(f"/v1/media?{q}")
        assert 400 <= r.status_code < 500, (q, r.status_code, r.text)
    r = client.get("/v1/media/m_x/thumbnail?size=100000000000000000000000")
    assert 400 <= r.status_code < 500, r.text


def test_deeply_nested_json_is_400(client: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for url in ("/v1/search", "/v1/sessions/s_x/messages"):
        r = client.post(url, content=deep, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text[:200])
    deep_obj = '{"text": "x", "filters": ' + '{"a":' * 50_000 + "1" + "}" * 50_001
    r = client.post("/v1/search", content=deep_obj, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text[:200]


def test_long_multipart_boundary_is_400(client: TestClient) -> None:
    b = "x" * 300
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + _png() + f"\r\n--{b}--\r\n".encode()
    for url in ("/v1/media", "/v1/search/image"):
        r = client.post(url, content=body,
                        headers={"content-type": f"multipart/form-data; boundary={b}"})
        assert r.status_code == 400, (url, r.status_code, r.text)
        assert "boundary" in _error(r)


def test_multipart_without_closing_boundary_is_400_and_stores_nothing(
        client: TestClient) -> None:
    png = _png()
    b = "glimpseboundary"
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"cut.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()
    for body in (head + png, head + png + b"\r\n", head + png[:20]):
        r = client.post("/v1/media", content=body,
                        headers={"content-type": f"multipart/form-data; boundary={b}"})
        assert r.status_code == 400, r.text
        assert "incomplete" in _error(r) or "malformed" in _error(r)
    assert client.get("/v1/media").json() == []
    # the same bytes sent properly are new, not "a duplicate" of a lost upload
    ok = upload(client, [("cut.png", png)])
    assert ok.status_code == 202 and ok.json()["items"][0]["duplicate"] is False
    mid = ok.json()["items"][0]["media_id"]
    f = client.get(f"/v1/media/{mid}/file")
    assert f.status_code == 200 and f.content == png


def test_garbage_multipart_is_400(client: TestClient) -> None:
    for body, ctype in ((b"\x00\xff" * 1000, "multipart/form-data; boundary=abc"),
                        (b"--abc\r\nno headers here at all", "multipart/form-data; boundary=abc"),
                        (b"", "multipart/form-data; boundary=abc"),
                        (b"x", "multipart/form-data"),
                        (b"x", "multipart/form-data; boundary=")):
        r = client.post("/v1/media", content=body, headers={"content-type": ctype})
        assert r.status_code == 400, (body[:30], ctype, r.status_code, r.text)


def test_content_length_refused_at_once(client: TestClient) -> None:
    core = client.app.state.core  # type: ignore[attr-defined]
    limit = core.settings.limits.max_request_bytes
    sent = 0

    def body():  # type: ignore[no-untyped-def]
        nonlocal sent
        for _ in range(4):
            sent += 1
            yield b"x" * 1024

    r = client.post("/v1/media", content=body(), headers={
        "content-type": "multipart/form-data; boundary=abc",
        "content-length": str(limit + 1)})
    assert r.status_code == 413, r.text
    assert sent <= 1, f"{sent} chunks were read before the refusal"
    r = client.post("/v1/search", content=b"{}", headers={
        "content-type": "application/json", "content-length": str(10**9)})
    assert r.status_code == 413, r.text


def test_request_cap_while_streaming_without_content_length(client: TestClient,
                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import service.upload as up

    core = client.app.state.core  # type: ignore[attr-defined]
    spooled = 0
    real = up.tempfile.mkstemp

    def counting(*a, **kw):  # type: ignore[no-untyped-def]
        nonlocal spooled
        spooled += 1
        return real(*a, **kw)

    monkeypatch.setattr(up.tempfile, "mkstemp", counting)
    core.settings.limits.max_request_bytes = 200_000
    core.settings.limits.max_upload_bytes = 150_000
    tmp = core.blobs.tmp
    sent = 0
    b = "abc"

    def body():  # type: ignore[no-untyped-def]
        nonlocal sent
        for i in range(100):  # 100 files of 10 KB: 1 MB, five times the request cap
            sent += 1
            yield (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; "
                   f"filename=\"f{i}.bin\"\r\n\r\n").encode() + b"y" * 10_000 + b"\r\n"
        yield f"--{b}--\r\n".encode()

    r = client.post("/v1/media", content=body(),
                    headers={"content-type": f"multipart/form-data; boundary={b}"})
    assert r.status_code == 413, r.text
    assert sent == 100  # the client sent it all (chunked, no Content-Length) ...
    assert spooled <= 21, f"... but the server spooled {spooled} parts past a 200 KB cap"
    assert list(tmp.iterdir()) == [], "spooled parts left behind"


def test_text_fields_and_file_counts_are_bounded(client: TestClient) -> None:
    core = client.app.state.core  # type: ignore[attr-defined]
    r = client.post("/v1/media", files=[("files", ("a.png", _png()))],
                    data={"note": "z" * 100_000})
    assert r.status_code == 400 and "too long" in _error(r)
    r = client.post("/v1/media", files=[("files", ("a" * 5000 + ".png", _png()))])
    assert r.status_code in (202, 400), r.text
    if r.status_code == 202:
        assert len(r.json()["items"][0]["filename"]) <= 255
    r = client.post("/v1/search/image", files={"image": ("q.png", _png())},
                    data={"text": "t" * 5000})
    assert r.status_code in (400, 422) and "text" in _error(r)
    core.settings.limits.max_files_per_request = 3
    r = upload(client, [(f"{i}.png", _png((i, i, i))) for i in range(5)])
    assert r.status_code == 400 and "at most 3" in _error(r)
    assert list(core.blobs.tmp.iterdir()) == []


def test_no_server_paths_in_error_responses(client: TestClient) -> None:
    core = client.app.state.core  # type: ignore[attr-defined]
    data_dir = str(core.settings.data_dir.resolve())
    bad_pdf = b"%PDF-1.4\n" + b"garbage" * 100
    half = (SAMPLES / "coffee.jpg").read_bytes()[:5000]
    responses = [
        upload(client, [("bad.pdf", bad_pdf)]),
        upload(client, [("half.jpg", half)]),
        client.post("/v1/search/image", files={"image": ("q.jpg", half)}),
        client.post("/v1/search/image",
                    files={"image": ("q.png", b"\x89PNG\r\n\x1a\n" + b"0" * 50)}),
        client.get("/v1/media/../../etc/passwd"),
        client.get("/v1/media/m_nope/file"),
    ]
    for r in responses:
        assert r.status_code < 500, r.text
        assert data_dir not in r.text and "/tmp/" not in r.text, r.text
        assert not re.search(r"(?<![\w:])/(?:[\w.-]+/){2,}", r.json()["error"]["message"]), \
            r.text


def test_security_headers_and_active_content_as_attachment(client: TestClient) -> None:
    from indexer.documents.synth import text_pdf

    page = client.get("/")
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert client.get("/health").headers["x-content-type-options"] == "nosniff"
    r = upload(client, [("doc.pdf", text_pdf([["hello world"]])), ("c.png", _png())])
    items = {i["filename"]: i for i in r.json()["items"]}
    wait_jobs(client, [i["job_id"] for i in items.values()])
    pdf = client.get(f"/v1/media/{items['doc.pdf']['media_id']}/file")
    assert pdf.status_code == 200
    assert pdf.headers["content-disposition"].startswith("attachment"), pdf.headers
    assert "sandbox" in pdf.headers["content-security-policy"]
    png = client.get(f"/v1/media/{items['c.png']['media_id']}/file")
    assert png.headers["content-disposition"].startswith("inline")
    assert png.headers["x-content-type-options"] == "nosniff"


def test_blob_store_refuses_names_that_are_not_digests(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from indexer.errors import NotFound
    from indexer.stores.blobs import BlobStore

    store = BlobStore(tmp_path / "blobs")
    for bad in ("", "abc", "../" * 22, "g" * 64):
        with pytest.raises(NotFound):
            store.open_path(bad)
    tmp = store.tmp / "spooled"
    tmp.write_bytes(b"x")
    with pytest.raises(NotFound):
        store.commit(tmp, "")
    assert not tmp.exists() and store.root.is_dir()
