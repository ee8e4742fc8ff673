"""Accepting media: validate a spooled upload, store its blob, record it, create a job.

Everything a person can get wrong is caught here, synchronously, so the API can answer a
clear 4xx per file; the heavy work (decode + model) happens later in a job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from indexer.context import Glimpse
from indexer.errors import GlimpseError
from indexer.media.images import validate_image
from indexer.media.sniff import sniff

log = logging.getLogger(__name__)


class Enqueuer(Protocol):
    """Where accepted jobs go: the in-process runner, or a Celery queue."""

    def enqueue_ingest(self, job_id: str) -> None: ...


@dataclass
class Accepted:
    media_id: str
    job_id: str | None
    status: str
    duplicate: bool
    kind: str
    filename: str | None


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def validate_file(core: Glimpse, path: Path) -> tuple[str, str, int | None, int | None]:
    """(kind, mime, width, height) or a typed error."""
    sn = sniff(_head(path))
    width = height = None
    if sn.kind == "image":
        info = validate_image(path, core.settings.limits)
        width, height = info.width, info.height
    elif sn.kind == "video":
        from indexer.pipeline.decode_video import validate_video

        width, height = validate_video(path, core.settings)
    elif sn.kind == "document":
        from indexer.pipeline.decode_document import validate_document

        validate_document(path, core.settings)
    return sn.kind, sn.mime, width, height


def accept_spooled(
    core: Glimpse, tmp_path: Path, sha256: str, size: int, *, filename: str | None,
    tenant: str | None, enqueuer: Enqueuer,
) -> Accepted:
    """Validate a spooled temp file and take it in. The temp file is consumed either way."""
    tenant = tenant or core.settings.tenant
    try:
        kind, mime, w, h = validate_file(core, tmp_path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    core.blobs.commit(tmp_path, sha256)
    row, created = core.catalog.add_media(
        tenant=tenant, sha256=sha256, kind=kind, mime=mime, size=size, width=w, height=h,
        filename=filename,
    )
    if not created and row.status in ("ready", "queued", "indexing"):
        job = core.catalog.latest_job(row.id)
        return Accepted(row.id, job.id if job else None, row.status, True, row.kind, filename)
    job = core.catalog.create_job(row.id)  # new, or a retry of a media that failed before
    core.catalog.set_media_status(row.id, "queued")
    enqueuer.enqueue_ingest(job.id)
    return Accepted(row.id, job.id, "queued", not created, row.kind, filename)


def accept_path(
    core: Glimpse, path: Path, *, tenant: str | None, enqueuer: Enqueuer
) -> Accepted:
    tmp, sha, size = core.blobs.spool(
        _chunks(path), max_bytes=core.settings.limits.max_upload_bytes
    )
    return accept_spooled(core, tmp, sha, size, filename=path.name, tenant=tenant,
                          enqueuer=enqueuer)


def _chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def iter_media_files(paths: Iterable[Path]) -> list[Path]:
    """Files and folders (recursively) → files, hidden files skipped, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise GlimpseError(f"no such file or folder: {p}")
    return out
