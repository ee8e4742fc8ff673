"""Text-to-image generation grounded in the index: POST starts one, GET reads it back."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from indexer.generation.service import GenerationRequest, GenerationService, generation_dict
from service.deps import CoreDep, Reader, SignerDep, Writer, get_core, get_enqueuer
from service.schemas import ErrorBody

router = APIRouter(prefix="/v1/generations", tags=["generations"])
_LOCK = threading.Lock()
GenId = Annotated[str, Path(pattern=r"^g_[0-9a-f]{24}$", description="a generation id")]


def get_generations(request: Request) -> GenerationService:
    """One service per app, built on first use (its thread pool and its generators)."""
    state = request.app.state
    with _LOCK:
        svc = getattr(state, "generations", None)
        if svc is None:
            svc = GenerationService(get_core(request), get_enqueuer(request))
            state.generations = svc
    return svc  # type: ignore[no-any-return]


GenerationsDep = Annotated[GenerationService, Depends(get_generations)]


class GenerationIn(BaseModel):
    prompt: str = Field(max_length=10_000, description="what to draw, e.g. 'a cat to the "
                        "left of a cup on a table' (the cpu backend reads at most 300 "
                        "characters and answers 400 past that)")
    n: int = Field(default=1, ge=1, le=1000, description="images (at most "
                   "generation.max_n, 4 by default)")
    size: str | int = Field(default="512x512", description="WIDTHxHEIGHT px, each side "
                            "64..generation.max_side (1024)")
    seed: int | None = Field(default=None, ge=0, description="same seed and index give the "
                             "same image; random when omitted")
    backend: str | None = Field(default=None, max_length=32,
                                description="cpu | diffusion | openai (default: settings)")


class GenerationAccepted(BaseModel):
    generation_id: str
    job_id: str
    status: str
    url: str


@router.post("", status_code=202, response_model=GenerationAccepted,
             responses={400: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def create(body: GenerationIn, svc: GenerationsDep, who: Writer) -> GenerationAccepted:
    """Start a generation. A prompt naming something the index has no instance of is
    answered 422 `missing_concept` with the missing names (nothing is invented)."""
    req = GenerationRequest(body.prompt, body.n, body.size, body.seed, body.backend)
    gid, jid = await run_in_threadpool(svc.submit, who.tenant, req)
    return GenerationAccepted(generation_id=gid, job_id=jid, status="queued",
                              url=f"/v1/generations/{gid}")


@router.get("/{generation_id}", responses={404: {"model": ErrorBody}})
async def get(generation_id: GenId, svc: GenerationsDep, core: CoreDep, who: Reader,
              sign: SignerDep) -> dict[str, Any]:
    """Status, the generated media ids, and per image its provenance (source media, views
    and boxes used) and checks (each parsed constraint, satisfied or not, with evidence)."""
    row = await run_in_threadpool(svc.get, who.tenant, generation_id)
    media = await run_in_threadpool(core.catalog.media_by_ids, list(row.media_ids or []))
    out = generation_dict(row, {m: r.status for m, r in media.items()})
    for r in out["results"]:
        r["file_url"] = sign(f"/v1/media/{r['media_id']}/file")
        r["thumbnail_url"] = sign(f"/v1/media/{r['media_id']}/thumbnail")
        for p in r["provenance"]:
            p["thumbnail_url"] = sign(f"/v1/media/{p['media_id']}/thumbnail")
            p["file_url"] = sign(f"/v1/media/{p['media_id']}/file")
    return out


@router.get("", responses={401: {"model": ErrorBody}})
async def recent(svc: GenerationsDep, who: Reader) -> dict[str, Any]:
    """This tenant's latest generations, newest first."""
    rows = await run_in_threadpool(svc.list, who.tenant)
    return {"generations": [{"generation_id": r.id, "status": r.status, "prompt": r.prompt,
                             "media_ids": r.media_ids, "created_at": r.created_at}
                            for r in rows]}
