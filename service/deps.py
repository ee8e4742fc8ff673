"""Dependency aliases: routes ask for what they need, the app state provides it. Who a
request is (its tenant and scope) comes from its API key, or from a signed URL for the
links a browser follows without headers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from indexer.context import Glimpse
from indexer.errors import GlimpseError
from indexer.ingest import Enqueuer
from indexer.keys import KeyStore, Principal, Scope
from service.access import TenantCatalog
from service.signing import SIGNABLE, Signer, verify_signed


class Unauthorized(GlimpseError):
    status = 401
    code = "unauthorized"


class Forbidden(GlimpseError):
    status = 403
    code = "forbidden"


def get_core(request: Request) -> Glimpse:
    return request.app.state.core  # type: ignore[no-any-return]


def get_enqueuer(request: Request) -> Enqueuer:
    return request.app.state.enqueuer  # type: ignore[no-any-return]


def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys  # type: ignore[no-any-return]


def authenticate(request: Request) -> Principal:
    """The request's principal. A Bearer key decides the tenant; with no key on the server
    at all (embedded default, loopback only) everything is the default tenant's admin."""
    keys = get_keys(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send the key as `Authorization: Bearer KEY`")
        who = keys.verify(token.strip())
        if who is None:
            raise Unauthorized("unknown or revoked API key")
        return who
    qp = request.query_params
    if "sig" in qp and request.method in ("GET", "HEAD") and SIGNABLE.match(request.url.path):
        tenant = verify_signed(request, keys.signing_secret())
        if tenant is None:
            raise Unauthorized("this link's signature is wrong or expired; reload the page")
        return tenant
    if not keys.any_keys():
        return Principal(request.app.state.core.settings.tenant, "admin", None)
    raise Unauthorized("this server needs an API key: send `Authorization: Bearer KEY`")


def _require(scope: Scope):  # type: ignore[no-untyped-def]
    def dep(request: Request) -> Principal:
        who = authenticate(request)
        if not who.may(scope):
            raise Forbidden(f"this key's scope is {who.scope!r}; this needs {scope!r}")
        request.state.principal = who
        return who
    return dep


def scoped_catalog(request: Request, who: Principal = Depends(_require("read"))) -> TenantCatalog:
    return TenantCatalog(get_core(request), who.tenant)


def get_signer(request: Request) -> Signer:
    keys = get_keys(request)
    ttl = request.app.state.core.settings.auth.signed_url_ttl_s
    return Signer(keys.signing_secret() if keys.any_keys() else None, ttl)


CoreDep = Annotated[Glimpse, Depends(get_core)]
EnqueuerDep = Annotated[Enqueuer, Depends(get_enqueuer)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
Reader = Annotated[Principal, Depends(_require("read"))]
Writer = Annotated[Principal, Depends(_require("write"))]
Admin = Annotated[Principal, Depends(_require("admin"))]
SignerDep = Annotated[Signer, Depends(get_signer)]
ScopedDep = Annotated[TenantCatalog, Depends(scoped_catalog)]
Auth = Depends(_require("read"))
AdminAuth = Depends(_require("admin"))
