"""/docs with its assets served by the app itself, so the API docs work with no network
(FastAPI's defaults load Swagger UI and ReDoc from a CDN). There is no /redoc: ReDoc's page
always fetches its vendor's logo from a CDN, so it cannot be fully offline.

FastAPI's documented self-hosting recipe (docs_url=None, our own routes calling
`get_swagger_ui_html` with local asset URLs); the assets come from the `fastapi-offline`
package, which ships Swagger UI 5 (OpenAPI 3.1, what FastAPI emits; `swagger-ui-bundle` on
PyPI ships Swagger UI 4.15, which cannot render a 3.1 schema).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"


def assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).resolve().parent / "static"


def install_offline_docs(app: FastAPI, *, docs_url: str = "/docs") -> None:
    """Add the docs routes and their assets to an app created with docs_url=None and
    redoc_url=None. Call before any catch-all mount at "/"."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=oauth2_url,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters)

    @app.get(oauth2_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    # where the docs live, for code that asks the app (the key check on the docs pages)
    app.docs_url = docs_url
    app.swagger_ui_oauth2_redirect_url = oauth2_url
