"""Search: one service call, two declared shapes — a JSON body, or multipart with an example
image (`/v1/search/image`)."""

from __future__ import annotations

import io
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from indexer.errors import CorruptMedia, InvalidRequest, MediaTooLarge, UnsupportedMedia
from indexer.media.images import check_header
from indexer.search import SearchFilters, SearchQuery
from service.deps import CoreDep, Reader, SignerDep
from service.schemas import ErrorBody, SearchFiltersIn, SearchIn, SearchOut
from service.signing import Signer

router = APIRouter(prefix="/v1", tags=["search"])
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 404, 413, 415, 422)}


@router.post("/search", response_model=SearchOut, responses=ERRORS)
async def search(body: SearchIn, core: CoreDep, who: Reader, sign: SignerDep) -> SearchOut:
    """Search by `text`, by an indexed `media_id` (more like this), or both."""
    return await _run(core, body, None, who.tenant, sign)


@router.post("/search/image", response_model=SearchOut, responses=ERRORS)
async def search_image(
    core: CoreDep,
    who: Reader,
    sign: SignerDep,
    image: Annotated[UploadFile, File(description="the example image")],
    text: Annotated[str | None, Form(max_length=1000)] = None,
    k: Annotated[int, Form(ge=1, le=200)] = 10,
    filters: Annotated[str | None, Form(max_length=64 * 1024,
                                        description="SearchFilters as JSON")] = None,
    rerank: Annotated[bool, Form()] = True,
    rerank_n: Annotated[int, Form(ge=1, le=200)] = 20,
    explain: Annotated[bool, Form()] = False,
    explain_m: Annotated[int, Form(ge=1, le=50)] = 5,
) -> SearchOut:
    """Search by an example image (multipart `image`), optionally with `text`."""
    try:
        flt = SearchFiltersIn.model_validate_json(filters) if filters else SearchFiltersIn()
    except (ValidationError, ValueError) as e:
        raise InvalidRequest("the `filters` field must be JSON like "
                             '{"kind": ["photo"], "date_from": "2024-01-01T00:00:00Z"}') from e
    body = SearchIn(text=text or None, k=k, filters=flt, rerank=rerank, rerank_n=rerank_n,
                    explain=explain, explain_m=explain_m)
    limit = core.settings.limits.max_upload_bytes
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise MediaTooLarge("the query image is over the upload size limit")
    # decoding (and its header checks) runs off the event loop
    img = await run_in_threadpool(_decode_query_image, data, core)
    return await _run(core, body, img, who.tenant, sign)


async def _run(core, body: SearchIn, image: Image.Image | None,  # type: ignore[no-untyped-def]
               tenant: str, sign: Signer) -> SearchOut:
    kinds: list[str] | None = sorted(set(body.filters.kind)) if body.filters.kind else None
    q = SearchQuery(
        text=body.text, image=image, example_media_id=body.media_id, k=body.k,
        filters=SearchFilters(kinds=kinds, tenant=tenant, media_ids=body.filters.media_ids,
                              date_from=body.filters.date_from, date_to=body.filters.date_to,
                              generated=body.filters.generated),
        rerank=body.rerank, rerank_n=body.rerank_n, explain=body.explain,
        explain_m=body.explain_m,
    )
    resp = await run_in_threadpool(core.search.search, q)
    sid = await run_in_threadpool(core.conversations.open, q, resp)
    return SearchOut(session_id=sid, results=[_result(r, sign) for r in resp.results],
                     stages=resp.stages, no_good_match=resp.no_good_match,
                     message=resp.message, timings_ms=resp.timings_ms, lists=resp.lists)


def _decode_query_image(data: bytes, core) -> Image.Image:  # type: ignore[no-untyped-def]
    if not data:
        raise InvalidRequest("the query image is empty")
    try:
        img = Image.open(io.BytesIO(data))
        check_header(img, core.settings.limits)
        img.load()
        return img.convert("RGB")
    except UnidentifiedImageError as e:
        raise UnsupportedMedia("the query file is not an image") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise CorruptMedia(f"the query image is truncated or corrupt: {e}") from e


def _result(r, sign: Signer) -> dict[str, object]:  # type: ignore[no-untyped-def]
    d = r.to_dict()
    d["thumbnail_url"] = sign(f"/v1/media/{r.media_id}/views/{r.view.idx}/thumbnail")
    d["file_url"] = sign(f"/v1/media/{r.media_id}/file")
    return d

