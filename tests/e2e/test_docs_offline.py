"""/docs renders in a browser that can reach nothing but the server: Swagger UI's assets
come from the app (no CDN), and it renders FastAPI's OpenAPI 3.1 schema."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import LiveServer, PageKit

pytestmark = pytest.mark.e2e


def test_docs_render_with_no_network(kit: PageKit, live_server: LiveServer) -> None:
    page = kit.page
    here = urlsplit(live_server.url).netloc
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).netloc == here:
            route.continue_()
        else:  # what "offline" means: anything else fails
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    page.goto("/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.eval_on_selector_all(".opblock-summary-path",
                                      "els => els.map(e => e.textContent.trim())")
    assert "/v1/search" in paths and "/v1/media" in paths
    assert not page.query_selector(".errors-wrapper"), "Swagger UI could not read the schema"
    kit.shot("swagger")
    assert outside == []
