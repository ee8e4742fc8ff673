from __future__ import annotations

import io
import json

from fastapi import APIRouter, Request
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from indexer.errors import CorruptMedia, InvalidRequest, MediaTooLarge, UnsupportedMedia
from indexer.media.images import check_header
from indexer.search import SearchFilters, SearchQuery
from service.deps import Auth, CoreDep
from service.schemas import SearchIn, SearchOut

router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Auth])


@router.post("/search", response_model=SearchOut)
async def search(request: Request, core: CoreDep) -> SearchOut:
    """JSON `{"text", "media_id", "k", "filters"}`, or multipart with an `image` file and
    optional `text`, `k` and `filters` (JSON) fields."""
    ctype = request.headers.get("content-type", "")
    image: Image.Image | None = None
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        raw = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            filters = json.loads(raw["filters"]) if raw.get("filters") else {}
        except json.JSONDecodeError as e:
            raise InvalidRequest("the `filters` field must be JSON") from e
        fields: dict[str, object] = {
            "text": raw.get("text") or None, "media_id": raw.get("media_id") or None,
            "filters": filters,
        }
        for key in ("k", "rerank_n", "explain_m"):
            if raw.get(key):
                fields[key] = raw[key]
        for key in ("rerank", "explain"):
            if raw.get(key):
                fields[key] = raw[key].lower() in ("1", "true", "yes", "on")
        body = _parse_body(fields)
        up = form.get("image")
        if up is not None and not isinstance(up, str):
            data = await up.read(core.settings.limits.max_upload_bytes + 1)
            image = _decode_query_image(data, core)
    else:
        try:
            payload = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InvalidRequest("body must be JSON or multipart/form-data") from e
        body = _parse_body(payload)
    kinds: list[str] | None = sorted(set(body.filters.kind)) if body.filters.kind else None
    q = SearchQuery(
        text=body.text, image=image, example_media_id=body.media_id, k=body.k,
        filters=SearchFilters(kinds=kinds, media_ids=body.filters.media_ids,
                              date_from=body.filters.date_from, date_to=body.filters.date_to),
        rerank=body.rerank, rerank_n=body.rerank_n, explain=body.explain,
        explain_m=body.explain_m,
    )
    resp = await run_in_threadpool(core.search.search, q)
    sid = await run_in_threadpool(core.conversations.open, q, resp)
    return SearchOut(session_id=sid, results=[_result(r) for r in resp.results],
                     stages=resp.stages, no_good_match=resp.no_good_match,
                     message=resp.message, timings_ms=resp.timings_ms, lists=resp.lists)


def _parse_body(payload: object) -> SearchIn:
    try:
        return SearchIn.model_validate(payload)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InvalidRequest(f"invalid search request: {loc}: {first['msg']}") from e


def _decode_query_image(data: bytes, core) -> Image.Image:  # type: ignore[no-untyped-def]
    if not data:
        raise InvalidRequest("the query image is empty")
    if len(data) > core.settings.limits.max_upload_bytes:
        raise MediaTooLarge("the query image is over the upload size limit")
    try:
        img = Image.open(io.BytesIO(data))
        check_header(img, core.settings.limits)
        img.load()
        return img.convert("RGB")
    except UnidentifiedImageError as e:
        raise UnsupportedMedia("the query file is not an image") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptMedia(f"the query image is truncated or corrupt: {e}") from e


def _result(r) -> dict[str, object]:  # type: ignore[no-untyped-def]
    d = r.to_dict()
    d["thumbnail_url"] = f"/v1/media/{r.media_id}/views/{r.view.idx}/thumbnail"
    return d
