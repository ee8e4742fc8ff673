"""A 10 KB PDF of 100 pages with a huge MediaBox, uploaded to the running app: the server's
RSS (read with psutil while it is decoded and indexed) stays within the bound the README
states, and the document is still indexed (every page a view)."""

from __future__ import annotations

import psutil
from fastapi.testclient import TestClient

from bench.security import PeakRss, bomb_pdf
from tests.unit.service.conftest import upload, wait_jobs

MB = 1024 * 1024
# README "Security": decoding holds at most limits.max_pdf_total_pixels x 3 bytes of pages
# (48 MP -> 144 MB); with the model's working set on top the server grows by less than this
RSS_GROWTH_BOUND = 600 * MB


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
