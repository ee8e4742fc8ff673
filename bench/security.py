"""`glimpse bench --only security`: the figures of issue 14, measured against the real app.

- leaks: two tenants, >= 1,000 randomized requests over every route (ids of the other tenant,
  unknown ids, searches with random words, filters naming the other's media, sessions,
  signed URLs); a leak is any response that shows the asker something of the other tenant
  (a 2xx on its id, one of its ids or filenames in a body, or a 404 that differs from the
  one an unknown id gets).
- auth overhead: search p50 with a Bearer key against the same app with keys off, on the
  same index, interleaved.
- RSS: the server process under the 100-page PDF bomb, and under 20 concurrent 100 MB
  uploads to a real uvicorn (psutil, sampled every 10 ms), beside its RSS before.

Lives in the bench package (it drives the HTTP app, which indexer/ must not import); the
PDF-bomb test takes its bomb and its RSS sampler from here."""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from indexer.settings import Settings

MB = 1024 * 1024
SAMPLES = Path(__file__).resolve().parent.parent / "indexer" / "samples"
WORDS = ["cat", "coffee", "cup", "rocket", "person", "astronaut", "a photo", "red", "sky",
         "text", "dog", "launch", "face", "kitchen", "table", "hello", "the second one"]


class PeakRss:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    def report(self) -> dict[str, float]:
        end = self.proc.memory_info().rss
        return {"rss_before_mb": round(self.base / MB), "rss_peak_mb": round(self.peak / MB),
                "rss_after_mb": round(end / MB),
                "growth_mb": round((self.peak - self.base) / MB)}


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _app(settings: Settings, data_dir: Path, model: Any = None) -> Any:
    from indexer.context import Glimpse
    from service.app import create_app

    s = settings.model_copy(deep=True)
    s.data_dir = data_dir
    s.catalog.url = None
    s.vectors.backend = "faiss"
    s.queue.broker_url = None
    s.auth.key_cache_s = 5.0
    return create_app(core=Glimpse(s, model=model))


def _wait(c: Any, key: str, jobs: list[str]) -> None:
    deadline = time.monotonic() + 600
    for j in jobs:
        while c.get(f"/v1/jobs/{j}", headers=_h(key)).json()["status"] not in ("done",
                                                                                "failed"):
            if time.monotonic() > deadline:
                raise TimeoutError(j)
            time.sleep(0.1)


def bench_security(settings: Settings, *, quick: bool = False) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from indexer.models import build_model

    model = build_model(settings)
    model.load()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-sec-") as tmp:
        app = _app(settings, Path(tmp) / "data", model)
        with TestClient(app) as c:
            keys = app.state.keys
            ka = keys.create("acme", "write", "bench")[0]
            kb = keys.create("globex", "write", "bench")[0]
            photos = sorted(SAMPLES.glob("*.jpg"))
            own: dict[str, dict[str, list[str]]] = {}
            for key, tenant, files in ((ka, "acme", photos[0::2]), (kb, "globex", photos[1::2])):
                r = c.post("/v1/media", headers=_h(key),
                           files=[("files", (p.name, p.read_bytes())) for p in files])
                items = r.json()["items"]
                _wait(c, key, [i["job_id"] for i in items])
                sids = [c.post("/v1/search", json={"text": w}, headers=_h(key)).json()[
                    "session_id"] for w in ("coffee", "cat")]
                own[tenant] = {"media": [i["media_id"] for i in items],
                               "jobs": [i["job_id"] for i in items], "sessions": sids,
                               "files": [i["filename"] for i in items]}
            out["leaks"] = _leak_run(c, {"acme": ka, "globex": kb}, own,
                                     n=1000 if quick else 2000)
            out["auth_overhead"] = _auth_overhead(c, app, ka, n=100 if quick else 300)
            out["follow_up_turns"] = _turn_growth(c, app, ka, turns=100 if quick else 200)
            out["pdf_bomb"] = _pdf_bomb(c, ka)
    out["uploads_20x100mb"] = _concurrent_uploads(settings, model, n=20,
                                                  size=(20 if quick else 100) * MB)
    close = getattr(model, "close", None)
    if callable(close):
        close()
    return out


def _leak_run(c: Any, keys: dict[str, str], own: dict[str, dict[str, list[str]]],
              n: int) -> dict[str, Any]:
    rng = random.Random(14)
    tenants = list(keys)
    unknown = {"media": "m_" + "0" * 24, "jobs": "j_" + "0" * 24, "sessions": "s_" + "0" * 24}
    per_route: dict[str, int] = {}
    leaks: list[str] = []
    statuses: dict[int, int] = {}

    def secrets_of(t: str) -> list[str]:
        o = own[t]
        return o["media"] + o["jobs"] + o["sessions"] + o["files"]

    routes = ["list", "media", "thumb", "view_thumb", "file", "frames", "extract", "job",
              "search", "search_example", "search_filter", "search_image", "session",
              "message", "signed"]
    signed: dict[str, list[str]] = {t: [] for t in tenants}
    for t in tenants:
        for mid in own[t]["media"]:
            m = c.get(f"/v1/media/{mid}", headers=_h(keys[t])).json()
            signed[t] += [m["thumbnail_url"], m["file_url"]]
    for i in range(n):
        me = tenants[i % 2]
        other = tenants[1 - i % 2]
        route = routes[rng.randrange(len(routes))]
        per_route[route] = per_route.get(route, 0) + 1
        whose = rng.choice(["mine", "other", "other", "unknown"])
        kind = "sessions" if route in ("session", "message") else (
            "jobs" if route == "job" else "media")
        if whose == "unknown":
            target = unknown[kind]
        else:
            target = rng.choice(own[me if whose == "mine" else other][kind])
        h = _h(keys[me])
        paths = {"media": "/v1/media/{}", "thumb": "/v1/media/{}/thumbnail",
                 "view_thumb": "/v1/media/{}/views/0/thumbnail", "file": "/v1/media/{}/file",
                 "frames": "/v1/media/{}/frames", "extract": "/v1/media/{}/extract?kind=text",
                 "job": "/v1/jobs/{}", "session": "/v1/sessions/{}"}
        if route == "list":
            r = c.get(f"/v1/media?limit={rng.randint(1, 50)}&offset={rng.randint(0, 3)}",
                      headers=h)
        elif route in paths:
            r = c.get(paths[route].format(target), headers=h)
        elif route == "search":
            r = c.post("/v1/search", headers=h, json={
                "text": " ".join(rng.sample(WORDS, rng.randint(1, 3))),
                "k": rng.randint(1, 20), "rerank": rng.random() < 0.5})
        elif route == "search_example":
            r = c.post("/v1/search", headers=h, json={"media_id": target, "k": 5,
                                                     "rerank": False})
        elif route == "search_filter":
            ids = own[other]["media"] + rng.sample(own[me]["media"], 1)
            r = c.post("/v1/search", headers=h, json={"text": rng.choice(WORDS),
                                                     "filters": {"media_ids": ids}})
        elif route == "search_image":
            p = rng.choice(sorted(SAMPLES.glob("*.jpg")))
            r = c.post("/v1/search/image", headers=h, data={"k": "5", "rerank": "false"},
                       files={"image": (p.name, p.read_bytes())})
        elif route == "message":
            r = c.post(f"/v1/sessions/{target}/messages", headers=h,
                       json={"question": rng.choice(["how many people are in the first one?",
                                                     "which of these has a cat?",
                                                     "what text is in the second one?"])})
        else:  # a signed URL of the other tenant tried for another path of this tenant's
            url = rng.choice(signed[other])
            mine_id = rng.choice(own[me]["media"])
            other_id = url.split("/")[3]
            r = c.get(url.replace(other_id, mine_id))
            whose = "forged"
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        body = r.text
        if r.status_code >= 500:
            leaks.append(f"{route} {whose}: {r.status_code}")
        if whose == "other" and route in paths:
            ref = c.get(paths[route].format(unknown[kind]), headers=h)
            same = (r.status_code == ref.status_code == 404
                    and body.replace(target, "ID") == ref.text.replace(unknown[kind], "ID"))
            if not same:
                leaks.append(f"{route}: other's id answered {r.status_code}")
            continue
        if whose == "other" and route in ("message", "search_example") and r.status_code != 404:
            leaks.append(f"{route}: other's id answered {r.status_code}")
        if whose == "forged" and r.status_code != 401:
            leaks.append(f"signed URL opened another path: {r.status_code}")
        if r.status_code < 300 and any(s in body for s in secrets_of(other)):
            leaks.append(f"{route} {whose}: body holds the other tenant's id or filename")
    return {"requests": n, "leaks": len(leaks), "examples": leaks[:10],
            "per_route": dict(sorted(per_route.items())),
            "statuses": dict(sorted(statuses.items()))}


def _turn_growth(c: Any, app: Any, key: str, turns: int) -> dict[str, Any]:
    """Follow-up latency early and late in one long session, now (the last few turns read)
    and as before (every earlier turn read back each turn), on two sessions alike."""
    store = app.state.core.conversations.store
    qs = ["how many people are in the first one?", "which of these has a cat?",
          "what text is in the second one?", "and the third one?"]
    out: dict[str, Any] = {}
    for mode in ("now", "before_all_turns"):
        real = store.recent_turns
        if mode != "now":
            store.recent_turns = lambda sid, n: store.turns(sid)
        sid = c.post("/v1/search", json={"text": "coffee", "k": 5},
                     headers=_h(key)).json()["session_id"]
        ms: list[float] = []
        for i in range(turns):
            r = c.post(f"/v1/sessions/{sid}/messages", json={"question": qs[i % len(qs)]},
                       headers=_h(key))
            assert r.status_code == 200, r.text
            ms.append(float(r.json()["latency_ms"]))
        store.recent_turns = real
        out[mode] = {"first_20_p50_ms": round(statistics.median(ms[:20]), 2),
                     "last_20_p50_ms": round(statistics.median(ms[-20:]), 2)}
    out["turns"] = turns
    return out


def _auth_overhead(c: Any, app: Any, key: str, n: int) -> dict[str, Any]:
    """Same app, same index: with a Bearer key (keys on) and with the key store reporting no
    keys (keys off: the embedded default's path), interleaved so drift hits both alike."""
    keys = app.state.keys
    st = app.state.core.settings
    home = st.tenant
    st.tenant = keys.verify(key).tenant  # keys off answers as the default tenant: make it
    # the key's, so both paths search the same media
    body = {"text": "a cup of coffee", "k": 10}
    on: list[float] = []
    off: list[float] = []
    real_any = keys.any_keys
    for _ in range(10):  # warm both paths
        c.post("/v1/search", json=body, headers=_h(key))
    for i in range(2 * n):
        if i % 2:
            keys.any_keys = lambda: False
            t0 = time.perf_counter()
            r = c.post("/v1/search", json=body)
            off.append((time.perf_counter() - t0) * 1000)
            keys.any_keys = real_any
        else:
            t0 = time.perf_counter()
            r = c.post("/v1/search", json=body, headers=_h(key))
            on.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and r.json()["results"], r.text
    keys.any_keys = real_any
    st.tenant = home
    assert len(on) == len(off)
    # the check alone: hash + cached lookup + scope, no HTTP
    t0 = time.perf_counter()
    for _ in range(10_000):
        keys.verify(key)
    verify_us = (time.perf_counter() - t0) / 10_000 * 1e6
    p50_on, p50_off = statistics.median(on), statistics.median(off)
    return {"search_p50_ms_keys_on": round(p50_on, 2), "search_p50_ms_keys_off": round(p50_off, 2),
            "p50_difference_ms": round(p50_on - p50_off, 3), "requests_each": n,
            "verify_key_us": round(verify_us, 2)}


def _pdf_bomb(c: Any, key: str) -> dict[str, Any]:
    """The 10 KB, 100-page, 14400 pt PDF uploaded to the app (its runner decodes and indexes
    it in this process), beside the decode alone at the caps before this issue (12 MP per
    page, no document budget) in a child process."""
    import json
    import subprocess
    import sys

    pdf = bomb_pdf()
    with PeakRss() as rss:
        r = c.post("/v1/media", headers=_h(key), files=[("files", ("bomb.pdf", pdf))])
        item = r.json()["items"][0]
        _wait(c, key, [item["job_id"]])
    media = c.get(f"/v1/media/{item['media_id']}", headers=_h(key)).json()
    code = (
        "import json,sys,tempfile,psutil;from pathlib import Path;"
        "from indexer.documents.pdf import render_pdf;"
        "p=Path(tempfile.mkdtemp())/'b.pdf';p.write_bytes(sys.stdin.buffer.read());"
        "pr=psutil.Process();b=pr.memory_info().rss;"
        "res=render_pdf(p,max_pages=200,max_page_pixels=int(sys.argv[1]),"
        "max_total_pixels=(int(sys.argv[2]) or None));"
        "print(json.dumps({'pages':len(res.pages),'growth_mb':round((pr.memory_info().rss-b)/2**20)}))")
    decode: dict[str, Any] = {}
    for name, page_px, total in (("before_12mp_per_page_no_budget", 12_000_000, 0),
                                 ("now_4mp_per_page_48mp_budget", 4_000_000, 48_000_000)):
        pr = subprocess.run([sys.executable, "-c", code, str(page_px), str(total)], input=pdf,
                            capture_output=True, timeout=900)
        decode[name] = json.loads(pr.stdout) if pr.returncode == 0 else {
            "error": pr.stderr.decode()[-300:]}
    return {"pdf_bytes": len(pdf), "status": media["status"],
            "pages_indexed": sum(v["kind"] == "page" for v in media["views"]),
            "server": rss.report(), "decode_only": decode}


def bomb_pdf(n: int = 100, side_pt: float = 14400.0) -> bytes:
    """n pages of side_pt x side_pt points (14400 pt = 200 inches, PDF's largest page): at
    150 dpi each page alone would be 900 MP (also the PDF-bomb test's input)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(n)).encode()
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>",
              b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(n).encode() + b" >>"]
    bodies += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {side_pt} {side_pt}] >>".encode()
               for _ in range(n)]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, b in enumerate(bodies, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + b + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


def _concurrent_uploads(settings: Settings, model: Any, n: int, size: int) -> dict[str, Any]:
    """n clients each streaming a `size`-byte file (chunked, not held in memory) to a real
    uvicorn at once; the body is spooled to disk as it arrives, so RSS should not grow with
    n x size. The files are not media (sniffed 415 after spooling), so no decode runs."""
    import httpx
    import uvicorn

    with tempfile.TemporaryDirectory(prefix="glimpse-bench-up-") as tmp:
        app = _app(settings, Path(tmp) / "data", model)
        app.state.core.settings.limits.max_upload_bytes = size + MB
        import socket

        with socket.socket() as sck:
            sck.bind(("127.0.0.1", 0))
            port = sck.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        while not server.started:
            time.sleep(0.05)
        chunk = bytes(range(256)) * 4096  # 1 MB, not a known media format
        results: list[int] = []

        def one(i: int) -> None:
            def gen():  # type: ignore[no-untyped-def]
                b = "bnd"
                yield (f"--{b}\r\nContent-Disposition: form-data; name=\"files\"; "
                       f"filename=\"big{i}.bin\"\r\n\r\n").encode()
                for _ in range(size // len(chunk)):
                    yield chunk
                yield f"\r\n--{b}--\r\n".encode()

            with httpx.Client(timeout=600) as cl:
                r = cl.post(f"http://127.0.0.1:{port}/v1/media", content=gen(),
                            headers={"content-type": "multipart/form-data; boundary=bnd"})
                results.append(r.status_code)

        t0 = time.perf_counter()
        with PeakRss() as rss:
            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        dt = time.perf_counter() - t0
        server.should_exit = True
        th.join(timeout=30)
        left = list((Path(tmp) / "data" / "blobs" / ".tmp").iterdir())
    return {"clients": n, "mb_each": size // MB, "seconds": round(dt, 1),
            "statuses": sorted(set(results)), "spooled_files_left": len(left),
            **rss.report()}
