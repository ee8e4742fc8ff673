"""The FastAPI app. `create_app(settings)` builds everything; errors are mapped once here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from indexer.context import Glimpse
from indexer.errors import GlimpseError, StoreUnavailable
from indexer.ingest import Enqueuer
from indexer.settings import Settings
from service.routes import health, jobs, media, search, sessions

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
            stop = getattr(enq, "stop", None)
            if stop is not None:
                stop()
            core.close()

    app = FastAPI(title="Glimpse", version="0.1.0", lifespan=lifespan,
                  description="Self-hostable, retrieval-augmented visual search.")
    app.state.core = core

    @app.exception_handler(GlimpseError)
    async def glimpse_error(_: Request, e: GlimpseError) -> JSONResponse:
        headers = {}
        if isinstance(e, StoreUnavailable):
            headers["Retry-After"] = str(e.retry_after)
        return JSONResponse({"error": {"code": e.code, "message": e.message,
                                       "detail": e.detail}},
                            status_code=e.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        msg = "; ".join(f"{'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in errs[:3])
        return JSONResponse({"error": {"code": "invalid_request", "message": msg,
                                       "detail": {}}}, status_code=422)

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
    if STATIC.exists():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="static")
    return app
