from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from indexer.errors import EmptyMedia, GlimpseError, InvalidRequest, NotFound
from indexer.ingest import accept_spooled
from indexer.media.images import load_rgb, thumbnail_jpeg
from indexer.stores.catalog import MediaRow, ViewRecord
from service.deps import CoreDep, EnqueuerDep, ScopedDep, SignerDep, Writer
from service.schemas import ErrorBody, MediaOut, UploadItem, UploadResponse, ViewOut
from service.signing import Signer
from service.upload import cleanup, parse_multipart

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/media", tags=["media"])

# Declared for OpenAPI (clients, fuzzers); parsed by service/upload.py's streaming parser,
# which hashes and spools each file as it arrives and enforces the limits while it streams
# (FastAPI's UploadFile would spool the whole body before the route could refuse anything).
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "one or more images, videos or PDFs"}}},
    "encoding": {"files": {"contentType": "application/octet-stream"}}}}}}
Size = Annotated[int, Query(ge=32, le=1024, description="longer side in pixels")]
Idx = Annotated[int, Path(ge=0, le=100_000)]
ViewQ = Annotated[int, Query(ge=0, le=100_000)]


@router.post("", status_code=202, response_model=UploadResponse, openapi_extra=UPLOAD_BODY,
             responses={400: {"model": ErrorBody}, 413: {"model": ErrorBody},
                        415: {"model": ErrorBody}, 422: {"model": ErrorBody}})
async def upload(request: Request, core: CoreDep, enqueuer: EnqueuerDep,
                 who: Writer) -> JSONResponse:
    """Upload one or more files (multipart field `files`). Each file is validated on its own:
    a bad file gets its own 4xx entry and never affects the others. 202 when at least one
    file was accepted; otherwise the status of the first file's error."""
    parts = await parse_multipart(request, core.blobs.tmp, core.settings.limits)
    files = [p for p in parts if p.filename is not None]
    try:
        if not files:
            raise InvalidRequest("no files in the request: send one or more `files` parts")
        items: list[UploadItem] = []
        for p in files:
            items.append(await run_in_threadpool(_accept_one, core, enqueuer, p, who.tenant))
    finally:
        cleanup(parts)
    accepted = [i for i in items if i.error is None]
    status = 202
    if not accepted:
        status = int(items[0].error.detail.get("status", 400)) if items[0].error else 400
    body = UploadResponse(items=items).model_dump(mode="json")
    if status != 202:
        first = items[0].error
        body["error"] = first.model_dump() if first else None
    return JSONResponse(body, status_code=status)


def _accept_one(core, enqueuer, p, tenant: str) -> UploadItem:  # type: ignore[no-untyped-def]
    if p.error is not None:
        return _err_item(p.filename, p.error)
    if p.size == 0:
        if p.path is not None:
            p.path.unlink(missing_ok=True)
            p.path = None
        return _err_item(p.filename, EmptyMedia(f"{p.filename}: the file is empty"))
    try:
        path, p.path = p.path, None  # accept_spooled consumes the temp file either way
        a = accept_spooled(core, path, p.sha256, p.size, filename=p.filename, tenant=tenant,
                           enqueuer=enqueuer)
    except GlimpseError as e:
        return _err_item(p.filename, e)
    return UploadItem(filename=p.filename, media_id=a.media_id, job_id=a.job_id,
                      status=a.status, duplicate=a.duplicate, kind=a.kind)


def _err_item(filename: str | None, e: GlimpseError) -> UploadItem:
    msg = e.message if filename and e.message.startswith(filename) else (
        f"{filename}: {e.message}" if filename else e.message)
    return UploadItem(filename=filename, status="rejected",
                      error=ErrorBody(code=e.code, message=msg,
                                      detail={"status": e.status, **e.detail}))


def _view_out(v: ViewRecord, sign: Signer) -> ViewOut:
    d = v.description
    return ViewOut(
        view_id=v.id, idx=v.idx, kind=v.kind, t_start=v.t_start, t_end=v.t_end, page=v.page,
        width=v.width, height=v.height, caption=d.caption,
        tags=[asdict(t) for t in d.tags],
        ocr=[{"text": o.text, "score": o.score, "box": o.box.as_list()} for o in d.ocr],
        objects=[{"label": o.label, "score": o.score, "box": o.box.as_list(),
                  "source": o.source or "detector", **({"extra": o.extra} if o.extra else {})}
                 for o in d.objects],
        colors=d.colors,
        thumbnail_url=sign(f"/v1/media/{v.media_id}/views/{v.idx}/thumbnail"),
    )


def media_out(m: MediaRow, views: list[ViewRecord], sign: Signer) -> MediaOut:
    return MediaOut(
        media_id=m.id, kind=m.kind, mime=m.mime, size=m.size, sha256=m.sha256,
        width=m.width, height=m.height, duration_s=m.duration_s, filename=m.filename,
        origin=m.origin or "upload",
        status=m.status, error=m.error, warnings=m.warnings or [], created_at=m.created_at,
        thumbnail_url=sign(f"/v1/media/{m.id}/thumbnail"),
        file_url=sign(f"/v1/media/{m.id}/file"), views=[_view_out(v, sign) for v in views],
    )


@router.get("", response_model=list[MediaOut])
def list_media(cat: ScopedDep, sign: SignerDep,
               limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[MediaOut]:
    return [media_out(m, [], sign) for m in cat.list_media(limit=limit, offset=offset)]


@router.get("/{media_id}", response_model=MediaOut)
def get_media(media_id: str, cat: ScopedDep, sign: SignerDep) -> MediaOut:
    m = cat.media(media_id)
    return media_out(m, cat.views_of(media_id), sign)


def _thumb(core, sha: str, max_side: int) -> Response:  # type: ignore[no-untyped-def]
    # a JPEG is decoded at a reduced DCT scale: a 12 MP photo's thumbnail costs ~1/8 the decode
    img = load_rgb(core.blobs.open_path(sha), core.settings.limits, max_side=max_side)
    return Response(thumbnail_jpeg(img, max_side), media_type="image/jpeg",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.delete("/{media_id}", status_code=204, response_class=Response,
               responses={403: {"model": ErrorBody}, 404: {"model": ErrorBody}})
def delete_media(media_id: str, core: CoreDep, cat: ScopedDep, who: Writer) -> Response:
    """Remove a media: its catalog rows, vectors, and the blobs nothing else uses (a write
    key of its own tenant; another tenant's id is 404)."""
    cat.media(media_id)
    core.vectors.delete_media(media_id)
    for sha in core.catalog.delete_media(media_id):
        core.blobs.delete(sha)
    core.vectors.flush()
    return Response(status_code=204)


@router.get("/{media_id}/thumbnail", response_class=Response)
def thumbnail(media_id: str, core: CoreDep, cat: ScopedDep, size: Size = 320) -> Response:
    m = cat.media(media_id)
    if m.kind == "image":
        return _thumb(core, m.sha256, size)
    for v in cat.views_of(media_id):
        if v.image_sha256:
            return _thumb(core, v.image_sha256, size)
    raise NotFound(f"media {media_id} has no thumbnail yet (status {m.status})")


@router.get("/{media_id}/views/{idx}/thumbnail", response_class=Response)
def view_thumbnail(media_id: str, idx: Idx, core: CoreDep, cat: ScopedDep,
                   size: Size = 320) -> Response:
    m, v = cat.view(media_id, idx)
    return _thumb(core, v.image_sha256 or m.sha256, size)


@router.get("/{media_id}/file", response_class=FileResponse)
def original_file(media_id: str, core: CoreDep, cat: ScopedDep) -> FileResponse:
    """The original bytes (range requests supported, so a <video> can seek). Active content
    (PDF, SVG, HTML, anything not a plain image or video) is sent as an attachment, and
    every file with a sandboxing Content-Security-Policy."""
    m = cat.media(media_id)
    return FileResponse(core.blobs.open_path(m.sha256), media_type=m.mime,
                        filename=m.filename or None,
                        content_disposition_type="inline" if _passive(m.mime) else "attachment")


def _passive(mime: str) -> bool:
    return (mime.startswith("image/") and "svg" not in mime) or mime.startswith("video/")


@router.get("/{media_id}/frames")
def frames(media_id: str, cat: ScopedDep, sign: SignerDep) -> dict[str, object]:
    """A video's shots in time order: each keyframe with its time range and caption."""
    m = cat.media(media_id)
    if m.kind != "video":
        raise InvalidRequest(f"media {media_id} is a {m.kind}, not a video")
    views = [v for v in cat.views_of(media_id) if v.kind == "frame"]
    return {
        "media_id": media_id, "duration_s": m.duration_s, "status": m.status,
        "frames": [{"n": i, "view_id": v.id, "idx": v.idx, "t_start": v.t_start,
                    "t_end": v.t_end, "caption": v.caption,
                    "thumbnail_url": sign(f"/v1/media/{media_id}/frames/{i}/thumbnail")}
                   for i, v in enumerate(views)],
    }


@router.get("/{media_id}/frames/{n}/thumbnail", response_class=Response)
def frame_thumbnail(media_id: str, n: Idx, core: CoreDep, cat: ScopedDep,
                    size: Size = 320) -> Response:
    views = [v for v in cat.views_of(media_id) if v.kind == "frame"]
    if not 0 <= n < len(views):
        raise NotFound(f"media {media_id} has no frame {n} ({len(views)} frames)")
    v = views[n]
    if v.image_sha256 is None:
        raise NotFound(f"frame {n} of {media_id} has no stored image")
    return _thumb(core, v.image_sha256, size)


@router.get("/{media_id}/extract")
def extract(media_id: str, core: CoreDep, cat: ScopedDep,
            kind: Literal["text", "tables", "kv", "chart"] = "text", view: ViewQ = 0,
            format: Literal["json", "csv"] = "json") -> Response:
    """Structured extraction of one view (page n for documents): `kind=text|tables|kv|chart`;
    `format=csv` for tables. Results are stored: a second call costs nothing."""
    from indexer.documents.tables import table_to_csv
    from indexer.extraction import ExtractionService

    if format == "csv" and kind != "tables":
        raise InvalidRequest("format=csv is only for kind=tables")
    cat.media(media_id)  # the tenant's own, or 404 exactly like an unknown id
    result = ExtractionService(core).extract(media_id, kind, view)
    if format == "csv":
        tables = result.get("tables", [])
        body = "\n".join(table_to_csv(t) for t in tables)
        return Response(body, media_type="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{media_id}-p{view}-tables.csv"'})
    return JSONResponse(result)
