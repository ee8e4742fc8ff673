"""A 10 KB PDF of 100 pages with a huge MediaBox, uploaded to the running app: the server's
RSS (read with psutil while it is decoded and indexed) stays within the bound the README
states, and the document is still indexed (every page a view)."""

from __future__ import annotations

import threading
import time

import psutil
from fastapi.testclient import TestClient

from tests.unit.service.conftest import upload, wait_jobs

MB = 1024 * 1024
# README "Security": decoding holds at most limits.max_pdf_total_pixels x 3 bytes of pages
# (48 MP -> 144 MB); with the model's working set on top the server grows by less than this
RSS_GROWTH_BOUND = 600 * MB


def bomb_pdf(n: int = 100, side_pt: float = 14400.0) -> bytes:
    """n pages of side_pt x side_pt points (14400 pt = 200 inches, PDF's largest page): at
    150 dpi each page alone would be 900 MP."""
    def obj(i: int, body: bytes) -> bytes:
        return f"{i} 0 obj\n".encode() + body + b"\nendobj\n"

    kids = " ".join(f"{3 + i} 0 R" for i in range(n)).encode()
    bodies = [b"<< /Type /Catalog /Pages 2 0 R >>",
              b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(n).encode() + b" >>"]
    bodies += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {side_pt} {side_pt}] >>".encode()
               for _ in range(n)]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, b in enumerate(bodies, 1):
        offsets.append(len(out))
        out += obj(i, b)
    xref = len(out)
    out += f"xref\n0 {len(bodies) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(bodies) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
            .encode())
    return bytes(out)


class PeakRss:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
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


def test_pdf_page_bomb_keeps_rss_bounded(client: TestClient) -> None:
    from indexer.documents.synth import text_pdf

    # warm up: the model and the document path allocate what they keep anyway
    warm = upload(client, [("warm.pdf", text_pdf([["warm up page"]]))])
    wait_jobs(client, [warm.json()["items"][0]["job_id"]])
    pdf = bomb_pdf()
    assert len(pdf) < 12_000
    base = psutil.Process().memory_info().rss
    with PeakRss() as rss:
        r = upload(client, [("bomb.pdf", pdf)])
        assert r.status_code == 202, r.text
        item = r.json()["items"][0]
        done = wait_jobs(client, [item["job_id"]], timeout=600)
    job = next(iter(done.values()))
    growth = rss.peak - base
    print(f"pdf bomb: base {base / MB:.0f} MB, peak {rss.peak / MB:.0f} MB, "
          f"growth {growth / MB:.0f} MB (bound {RSS_GROWTH_BOUND / MB:.0f} MB)")
    assert growth < RSS_GROWTH_BOUND, f"RSS grew {growth / MB:.0f} MB"
    assert job["status"] == "done", job
    media = client.get(f"/v1/media/{item['media_id']}").json()
    pages = [v for v in media["views"] if v["kind"] == "page"]
    assert len(pages) == 100
    budget = client.app.state.core.settings.limits.max_pdf_total_pixels  # type: ignore[attr-defined]
    assert sum(v["width"] * v["height"] for v in pages) <= budget * 1.01  # px rounding
    assert any("pixel budget" in str(w) for w in media["warnings"]), media["warnings"]
