"""/docs points only at assets the app serves itself (no CDN), and those exist."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient


def test_docs_assets_are_served_by_the_app(tmp_path: Path) -> None:
    from indexer.settings import Settings
    from service.app import create_app

    app = create_app(Settings(data_dir=tmp_path / "data", environment="test"))
    with TestClient(app) as c:
        for page, want in (("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),):
            r = c.get(page)
            assert r.status_code == 200, r.text
            urls = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', r.text)
            urls += re.findall(r"url: ?['\"]([^'\"]+)['\"]", r.text)
            assert urls and all(u.startswith("/") for u in urls), urls  # nothing remote
            assert "cdn." not in r.text and "fonts.googleapis" not in r.text
            assets = [u for u in urls if u.rsplit("/", 1)[-1] in want]
            assert {u.rsplit("/", 1)[-1] for u in assets} == want
            for u in assets:
                a = c.get(u)
                assert a.status_code == 200 and len(a.content) > 100_000, u
                kind = "css" if u.endswith(".css") else "javascript"
                assert kind in a.headers["content-type"], (u, a.headers["content-type"])
        assert c.get("/openapi.json").json()["openapi"].startswith("3.1")
