"""The FastAPI app. `create_app(settings)` builds everything; errors are mapped once here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from indexer.context import Glimpse
from indexer.errors import GlimpseError, StoreUnavailable
from indexer.ingest import Enqueuer
from indexer.keys import KeyStore
from indexer.settings import Settings
from service.deps import authenticate
from service.docs import install_offline_docs
from service.guard import GuardMiddleware, error_body, install_log_redaction
from service.routes import generations, health, jobs, keys, media, search, sessions

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"


def build_enqueuer(core: Glimpse) -> Enqueuer:
    if core.settings.uses_broker:
        from workers.enqueue import CeleryEnqueuer  # "enqueue" is all the API knows of Celery

        return CeleryEnqueuer(core.settings)
    from indexer.jobs import InProcessRunner

    runner = InProcessRunner(core)
    runner.start()
    return runner


def create_app(settings: Settings | None = None, *, core: Glimpse | None = None) -> FastAPI:
    settings = settings or (core.settings if core else Settings())
    core = core or Glimpse(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core.migrate()
        if core.settings.admin_key:
            app.state.keys.ensure_env_admin(core.settings.admin_key, core.settings.tenant)
        enq = build_enqueuer(core)
        app.state.enqueuer = enq
        recover = getattr(enq, "recover", None)
        if recover is not None:
            n = recover()
            if n:
                log.info("re-queued %d unfinished jobs", n)
        try:
            yield
        finally:
            gens = getattr(app.state, "generations", None)
            if gens is not None:  # finish what is generating before the stores close
                gens.close()
            stop = getattr(enq, "stop", None)
            if stop is not None:
                stop()
            core.close()

    app = FastAPI(title="Glimpse", version="0.1.0", lifespan=lifespan,
                  description="Self-hostable, retrieval-augmented visual search.",
                  docs_url=None, redoc_url=None)
    install_offline_docs(app)  # /docs and /redoc with their assets served here, no CDN
    app.state.core = core
    app.state.keys = KeyStore(core.catalog, cache_s=settings.auth.key_cache_s)
    app.add_middleware(GuardMiddleware, settings=settings)
    install_log_redaction()

    @app.middleware("http")
    async def docs_need_a_key(request: Request, call_next):  # type: ignore[no-untyped-def]
        # the schema and its UI are routes FastAPI adds itself: guarded here, like /v1
        if request.url.path in (app.docs_url, app.redoc_url, app.openapi_url,
                                app.swagger_ui_oauth2_redirect_url):
            try:
                await run_in_threadpool(authenticate, request)
            except GlimpseError as e:
                return Response(error_body(e.code, e.message), status_code=e.status,
                                media_type="application/json")
        return await call_next(request)

    @app.exception_handler(GlimpseError)
    async def glimpse_error(_: Request, e: GlimpseError) -> Response:
        headers = {}
        if isinstance(e, StoreUnavailable):
            headers["Retry-After"] = str(e.retry_after)
        return Response(error_body(e.code, e.message, e.detail), status_code=e.status,
                        headers=headers, media_type="application/json")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, e: HTTPException) -> Response:
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large"}.get(e.status_code,
                                                                 "invalid_request")
        return Response(error_body(code, str(e.detail)), status_code=e.status_code,
                        headers=e.headers, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> Response:
        errs = e.errors()
        msg = "; ".join(f"{'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in errs[:3])
        return Response(error_body("invalid_request", msg[:2000]), status_code=422,
                        media_type="application/json")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse({"error": {"code": "internal", "message":
                                       "internal error; see the server log", "detail": {}}},
                            status_code=500)

    app.include_router(health.router)
    app.include_router(media.router)
    app.include_router(jobs.router)
    app.include_router(search.router)
    app.include_router(sessions.router)
    app.include_router(keys.router)
    app.include_router(generations.router)
    if STATIC.exists():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
