"""Dependency aliases: routes ask for what they need, the app state provides it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from indexer.context import Glimpse
from indexer.errors import GlimpseError
from indexer.ingest import Enqueuer


class Unauthorized(GlimpseError):
    status = 401
    code = "unauthorized"


def get_core(request: Request) -> Glimpse:
    return request.app.state.core  # type: ignore[no-any-return]


def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer  # type: ignore[no-any-return]


def require_token(request: Request, authorization: str | None = Header(default=None)) -> None:
    """Bearer token when one is configured. GET requests may also pass `?token=`, because an
    <img> or <video> element cannot send headers."""
    token = request.app.state.core.settings.api_token
    if not token:
        return
    if authorization == f"Bearer {token}":
        return
    if request.method == "GET" and request.query_params.get("token") == token:
        return
    raise Unauthorized("missing or wrong bearer token")


CoreDep = Annotated[Glimpse, Depends(get_core)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]
Auth = Depends(require_token)
