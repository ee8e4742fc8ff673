"""Run one ingest job: decode → encode (model) → embed captions → persist, timing each stage.

Idempotent: a job run twice (a redelivered task, a retry) leaves exactly one copy of every
view row and vector point, because view ids and point ids are deterministic and persist
replaces the media's views atomically. Transient store errors propagate so the caller
(in-process runner or Celery) can retry; every other error fails the job with a clear
message and leaves nothing half-written.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from indexer.context import Glimpse
from indexer.domain import ViewEncoding
from indexer.errors import GlimpseError, StoreUnavailable
from indexer.pipeline.decode import Decoded, decode_media
from indexer.stores.catalog import NewView, utcnow
from indexer.stores.vectors import VectorPoint, point_id

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (StoreUnavailable, ConnectionError, TimeoutError)


class StageTimer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1000


def caption_text(enc: ViewEncoding) -> str:
    d = enc.description
    parts = [d.caption, d.ocr_text]
    tl = d.extra.get("text_layer")
    if isinstance(tl, str):
        parts.append(tl[:2000])
    return ". ".join(p for p in parts if p)


class IngestPipeline:
    def __init__(self, core: Glimpse) -> None:
        self.core = core

    def run(
        self, job_id: str, *, progress: Callable[[float, str], None] | None = None
    ) -> dict[str, Any]:
        cat = self.core.catalog
        job = cat.start_job(job_id)
        media = cat.get_media(job.media_id)
        timer = StageTimer()

        def report(p: float, stage: str) -> None:
            cat.update_job(job_id, progress=round(p, 3), stage=stage)
            if progress:
                progress(p, stage)

        cat.set_media_status(media.id, "indexing")
        try:
            with timer.stage("decode"):
                report(0.05, "decode")
                path = self.core.blobs.open_path(media.sha256)
                decoded = decode_media(media.id, media.kind, path, self.core.settings)
            encodings = self._encode(decoded, timer, report)
            with timer.stage("embed_text"):
                report(0.85, "embed_text")
                texts = [caption_text(e) for e in encodings]
                cap_vecs = self.core.model.embed_texts(texts) if texts else np.zeros((0, 1))
            with timer.stage("persist"):
                report(0.92, "persist")
                self._persist(media.id, media.tenant, media.kind, decoded, encodings, cap_vecs)
        except TRANSIENT:
            cat.update_job(job_id, status="queued", stage="retrying")
            cat.set_media_status(media.id, "queued")
            raise
        except Exception as e:  # noqa: BLE001 - every failure is recorded on the job
            msg = e.message if isinstance(e, GlimpseError) else f"internal error: {e!r}"
            if not isinstance(e, GlimpseError):
                log.exception("ingest of %s failed", media.id)
            self._cleanup(media.id)
            cat.set_media_status(media.id, "failed", error=msg)
            cat.update_job(job_id, status="failed", error=msg, finished_at=utcnow(),
                           timings=timer.ms)
            return {"status": "failed", "error": msg, "timings_ms": timer.ms}
        cat.set_media_status(
            media.id, "ready", warnings=decoded.warnings,
            **{k: v for k, v in (("width", decoded.width), ("height", decoded.height),
                                  ("duration_s", decoded.duration_s)) if v is not None},
        )
        cat.update_job(job_id, status="done", progress=1.0, stage="done", error=None,
                       warnings=decoded.warnings, finished_at=utcnow(), timings=timer.ms)
        if progress:
            progress(1.0, "done")
        return {"status": "done", "views": len(decoded.views), "timings_ms": timer.ms}

    def _encode(
        self, decoded: Decoded, timer: StageTimer, report: Callable[[float, str], None]
    ) -> list[ViewEncoding]:
        bs = max(1, self.core.settings.model.batch_size)
        views = [d.view for d in decoded.views]
        out: list[ViewEncoding] = []
        with timer.stage("model"):
            for i in range(0, len(views), bs):
                out.extend(self.core.model.encode_views(views[i : i + bs]))
                report(0.1 + 0.75 * min(1.0, (i + bs) / max(1, len(views))), "model")
        return out

    def _persist(
        self, media_id: str, tenant: str, media_kind: str, decoded: Decoded,
        encodings: list[ViewEncoding], cap_vecs: np.ndarray,
    ) -> None:
        core = self.core
        new_views: list[NewView] = []
        points: list[VectorPoint] = []
        for dv, enc, cap in zip(decoded.views, encodings, cap_vecs, strict=True):
            v = dv.view
            sha = None
            if dv.store_image:
                buf = io.BytesIO()
                v.image.save(buf, format="JPEG", quality=88)
                sha = core.blobs.put_bytes(buf.getvalue())
            if v.text_layer:
                enc.description.extra.setdefault("text_layer", v.text_layer)
            new_views.append(NewView(
                idx=dv.idx, kind=v.kind, description=enc.description, t_start=v.t_start,
                t_end=v.t_end, page=v.page, width=v.image.width, height=v.image.height,
                image_sha256=sha,
            ))
            vectors = {k: np.asarray(x, dtype=np.float32) for k, x in enc.vectors.items()}
            vectors["caption"] = np.asarray(cap, dtype=np.float32)
            points.append(VectorPoint(
                id=point_id(media_id, v.view_id), vectors=vectors,
                payload={"media_id": media_id, "view_id": v.view_id, "tenant": tenant,
                         "kind": media_kind, "view_kind": v.kind, "t_start": v.t_start,
                         "t_end": v.t_end},
            ))
        # vectors first: a crash between the two leaves orphan points, which search drops
        # (it joins hits to catalog rows) and the next run of this job overwrites.
        core.vectors.delete_media(media_id)
        core.vectors.upsert(points)
        core.vectors.flush()
        core.catalog.replace_views(media_id, tenant, new_views)

    def _cleanup(self, media_id: str) -> None:
        try:
            self.core.vectors.delete_media(media_id)
            self.core.vectors.flush()
        except Exception:  # noqa: BLE001
            log.warning("cleanup of vectors for %s failed", media_id, exc_info=True)
        try:
            self.core.catalog.delete_views(media_id)
        except Exception:  # noqa: BLE001
            log.warning("cleanup of views for %s failed", media_id, exc_info=True)
