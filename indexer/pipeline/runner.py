"""Run ingest jobs: decode → encode (model) → embed captions → persist, timing each stage.

Two ways to drive the same stages:

* `IngestPipeline.run(job_id)` — the whole job in one call (the in-process runner of the
  embedded default, the CLI).
* The worker topology splits a job at the model boundary. `stage(job_id)` (ingest queue,
  CPU) decodes the media, keeps frame/page images in the blob store and writes a small
  manifest; `encode_batch(job_id)` (model queue) claims that job plus other decoded jobs
  waiting for the model, runs one batched model call over all their views, then persists
  and finishes each job on its own.

Idempotent: a job run twice (a redelivered task, a retry, a batch-mate whose own message
arrives later) leaves exactly one copy of every view row and vector point, because view ids
and point ids are deterministic and persist replaces the media's views atomically; a job
already `done` or `failed` is a no-op. Transient store errors propagate so the caller
(in-process runner or Celery) can retry; every other error fails the job with a clear
message and leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError as SqlOperationalError

from indexer.context import Glimpse
from indexer.domain import ViewEncoding, ViewInput
from indexer.errors import GlimpseError, StoreUnavailable
from indexer.media.images import load_rgb, load_view_rgb
from indexer.pipeline.decode import Decoded, DecodedView, decode_media
from indexer.stores.catalog import Catalog, JobRow, MediaRow, NewView, utcnow
from indexer.stores.vectors import VectorPoint, point_id

log = logging.getLogger(__name__)

# broker/DB/vector store down or slow: retry later. Everything else fails the job.
TRANSIENT: tuple[type[BaseException], ...] = (
    StoreUnavailable, ConnectionError, TimeoutError, SqlOperationalError, InterfaceError,
)
TERMINAL = ("done", "failed")
# job.stage while a decoded job waits for (or is inside) a model batch
STAGE_DECODED = "decoded"
STAGE_MODEL = "model"


class StageTimer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - t0) * 1000)

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms


def content_class(view: ViewInput, enc: ViewEncoding) -> str:
    """photo | chart | document | video: what the view looks like, for the kind filter.
    Video frames are video; pages and images are told apart by pixels and OCR boxes."""
    if view.kind in ("frame", "summary"):
        return "video"
    from indexer.documents.extract import classify_view

    return classify_view(view.image, enc.description.ocr)


_SCORE = re.compile(r"\s*\(\d\.\d+\)")
CAPTION_TEXT_CHARS = 400  # of OCR text / a page's text layer in the caption vector


def caption_text(enc: ViewEncoding) -> str:
    """What the `caption` vector embeds: the caption without its probabilities (five tokens
    of digits per tag mean nothing to a sentence encoder and cost ~0.4 ms each on a laptop
    core) and the view's text, capped (the encoder reads 128 tokens at most; the whole text
    is in the lexical index and, for the cpu backend, in the semantic vector)."""
    d = enc.description
    text = " ".join(x for x in (d.ocr_text, str(d.extra.get("text_layer") or "")) if x)
    parts = [_SCORE.sub("", d.caption), text[:CAPTION_TEXT_CHARS]]
    return ". ".join(p for p in parts if p)


@dataclass
class JobWork:
    """One job on its way through the stages."""

    job_id: str
    media: MediaRow
    decoded: Decoded
    # view idx -> blob sha of a frame/page image already in the blob store (staged jobs)
    stored: dict[int, str] = field(default_factory=dict)
    timer: StageTimer = field(default_factory=StageTimer)
    encodings: list[ViewEncoding] = field(default_factory=list)
    cap_vecs: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))


class JobLocks:
    """Postgres session-level advisory locks, one per job, on a dedicated connection.

    A model worker holds the lock of every job in its batch until the job is finished.
    Another worker that receives the same job (its own message, or a redelivery) sees the
    lock and waits instead of writing the same rows concurrently; a worker that dies frees
    its locks at once, because Postgres drops them with the connection. On SQLite (one
    process, the embedded default) locks are process-local bookkeeping only.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._held: set[str] = set()
        self._conn: Connection | None = None
        if catalog.dialect == "postgresql":
            try:
                self._conn = catalog.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            except Exception as e:  # noqa: BLE001 - any connect failure is "store down"
                raise StoreUnavailable(f"catalog unavailable: {e}") from e

    @staticmethod
    def key(job_id: str) -> int:
        return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(),
                              "big", signed=True)

    def try_lock(self, job_id: str) -> bool:
        if job_id in self._held:
            return True
        if self._conn is not None:
            got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                     {"k": self.key(job_id)}).scalar()
            if not got:
                return False
        self._held.add(job_id)
        return True

    def unlock(self, job_id: str) -> None:
        if job_id not in self._held:
            return
        self._held.discard(job_id)
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key(job_id)})

    @property
    def held(self) -> set[str]:
        return set(self._held)

    def close(self) -> None:
        self._held.clear()
        if self._conn is None:
            return
        try:  # a pooled connection must not keep session locks for its next user
            self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
            self._conn.close()
        except Exception:  # noqa: BLE001
            self._conn.invalidate()
        self._conn = None


class IngestPipeline:
    def __init__(self, core: Glimpse) -> None:
        self.core = core
        self._last_flush = time.monotonic()

    # ------------------------------------------------------------ whole job, one call

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
        work: JobWork | None = None
        try:
            with timer.stage("decode"):
                report(0.05, "decode")
                work = JobWork(job_id, media, self.decode(media), timer=timer)
            self.encode([work], report)
            with timer.stage("persist"):
                report(0.92, "persist")
                self.persist(work)
        except TRANSIENT:
            self._requeue(job_id, media.id)
            raise
        except Exception as e:  # noqa: BLE001 - every failure is recorded on the job
            return self.fail(job_id, media.id, e, timer)
        self.finish(work)
        if progress:
            progress(1.0, "done")
        return {"status": "done", "views": len(work.decoded.views), "timings_ms": timer.ms}

    def run_many(self, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Several jobs with ONE model pass over all their views (the embedded default's
        batching: the in-process runner drains what is queued, the CLI ingests in chunks).
        A job that fails to decode or persist fails alone; if the shared model pass fails,
        each job is retried on its own so one poison file cannot sink the batch."""
        cat = self.core.catalog
        results: dict[str, dict[str, Any]] = {}
        works: list[JobWork] = []
        for job_id in job_ids:
            timer = StageTimer()
            job = cat.start_job(job_id, stage="decode", progress=0.05)
            media = cat.get_media(job.media_id)
            cat.set_media_status(media.id, "indexing")
            try:
                with timer.stage("decode"):
                    works.append(JobWork(job_id, media, self.decode(media), timer=timer))
            except TRANSIENT:
                self._requeue(job_id, media.id)
                raise
            except Exception as e:  # noqa: BLE001 - recorded on the job
                results[job_id] = self.fail(job_id, media.id, e, timer)
        if not works:
            return results
        try:
            cat.update_jobs([w.job_id for w in works], progress=0.1, stage="model")
            self.encode(works)
        except TRANSIENT:
            for w in works:
                self._requeue(w.job_id, w.media.id)
            raise
        except Exception as e:  # noqa: BLE001 - isolate the bad job
            if len(works) == 1:
                w = works[0]
                results[w.job_id] = self.fail(w.job_id, w.media.id, e, w.timer)
                return results
            log.warning("batched model pass failed; running %d jobs one by one", len(works))
            for w in works:
                results.update(self.run_many([w.job_id]))
            return results
        for w in works:
            try:
                with w.timer.stage("persist"):  # a batch's persist is quick: no progress row
                    self.persist(w)
            except TRANSIENT:
                self._requeue(w.job_id, w.media.id)
                raise
            except Exception as e:  # noqa: BLE001
                results[w.job_id] = self.fail(w.job_id, w.media.id, e, w.timer)
                continue
            self.finish(w)
            results[w.job_id] = {"status": "done", "views": len(w.decoded.views),
                                 "timings_ms": w.timer.ms}
        return results

    # ----------------------------------------------------------------------- stages

    def decode(self, media: MediaRow) -> Decoded:
        path = self.core.blobs.open_path(media.sha256)
        return decode_media(media.id, media.kind, path, self.core.settings)

    def encode(
        self, works: Sequence[JobWork], report: Callable[[float, str], None] | None = None
    ) -> None:
        """One model pass over the views of several jobs (chunks of `model.batch_size`),
        then one text-embedding call over all their captions. Stage time is shared out
        to the jobs by their number of views."""
        model = self.core.model
        for w in works:  # a retried job must not encode a summary derived last time
            w.decoded.views = [dv for dv in w.decoded.views if dv.view.kind != "summary"]
        views = [dv.view for w in works for dv in w.decoded.views]
        bs = max(1, self.core.settings.model.batch_size)
        t0 = time.perf_counter()
        encs: list[ViewEncoding] = []
        for i in range(0, len(views), bs):
            encs.extend(model.encode_views(views[i : i + bs]))
            if report:
                report(0.1 + 0.75 * min(1.0, (i + bs) / max(1, len(views))), "model")
        t1 = time.perf_counter()
        if report:
            report(0.85, "embed_text")
        start = 0
        total = max(1, len(views))
        for w in works:
            n = len(w.decoded.views)
            w.encodings = encs[start : start + n]
            start += n
            w.timer.add("model", (t1 - t0) * 1000 * n / total)
            tc = time.perf_counter()
            for dv, enc in zip(w.decoded.views, w.encodings, strict=True):
                enc.description.extra.setdefault("content", content_class(dv.view, enc))
            w.timer.add("classify", (time.perf_counter() - tc) * 1000)
            if w.decoded.post_encode is not None and w.encodings:
                # derived views (a video's summary) are built from the encoded shots
                for dv, enc in w.decoded.post_encode(w.encodings):
                    w.decoded.views.append(dv)
                    w.encodings.append(enc)
        t1 = time.perf_counter()
        texts = [caption_text(e) for w in works for e in w.encodings]
        caps = model.embed_texts(texts) if texts else np.zeros((0, 1), np.float32)
        t2 = time.perf_counter()
        start = 0
        total = max(1, len(texts))
        for w in works:
            n = len(w.encodings)
            w.cap_vecs = caps[start : start + n]
            w.timer.add("embed_text", (t2 - t1) * 1000 * n / total)
            start += n

    def persist(self, work: JobWork) -> None:
        core = self.core
        media = work.media
        new_views: list[NewView] = []
        points: list[VectorPoint] = []
        for dv, enc, cap in zip(work.decoded.views, work.encodings, work.cap_vecs, strict=True):
            v = dv.view
            sha = work.stored.get(dv.idx)
            if dv.store_image and sha is None:
                sha = core.blobs.put_bytes(_jpeg(v.image))
            if v.text_layer:
                enc.description.extra.setdefault("text_layer", v.text_layer)
            for k, x in dv.extra.items():
                enc.description.extra.setdefault(k, x)
            new_views.append(NewView(
                idx=dv.idx, kind=v.kind, description=enc.description, t_start=v.t_start,
                t_end=v.t_end, page=v.page, width=v.image.width, height=v.image.height,
                image_sha256=sha,
            ))
            vectors = {k: np.asarray(x, dtype=np.float32) for k, x in enc.vectors.items()}
            vectors["caption"] = np.asarray(cap, dtype=np.float32)
            points.append(VectorPoint(
                id=point_id(media.id, v.view_id), vectors=vectors,
                payload={"media_id": media.id, "view_id": v.view_id, "tenant": media.tenant,
                         "kind": media.kind, "view_kind": v.kind, "t_start": v.t_start,
                         "t_end": v.t_end},
            ))
        # vectors first: a crash between the two leaves orphan points, which search drops
        # (it joins hits to catalog rows) and the next run of this job overwrites.
        core.vectors.delete_media(media.id)
        core.vectors.upsert(points)
        self.maybe_flush()
        core.catalog.replace_views(media.id, media.tenant, new_views)

    def maybe_flush(self, *, force: bool = False) -> None:
        """Persist the vector index at most every `vectors.flush_interval_s`: a FAISS flush
        writes the whole index, so flushing per job would cost O(index) per image. What a
        crash loses is re-indexed from the catalog at the next start (`missing_media`)."""
        now = time.monotonic()
        if force or now - self._last_flush >= self.core.settings.vectors.flush_interval_s:
            self.core.vectors.flush()
            self._last_flush = now

    def finish(self, work: JobWork) -> None:
        cat = self.core.catalog
        d = work.decoded
        dims: dict[str, Any] = {k: v for k, v in (("width", d.width), ("height", d.height),
                                                  ("duration_s", d.duration_s)) if v is not None}
        cat.finish_job(work.job_id, work.media.id, {"warnings": d.warnings, **dims},
                       {"status": "done", "progress": 1.0, "stage": "done", "error": None,
                        "warnings": d.warnings, "finished_at": utcnow(),
                        "timings": work.timer.ms})

    def fail(
        self, job_id: str, media_id: str, e: BaseException, timer: StageTimer, *,
        cleanup_vectors: bool = True,
    ) -> dict[str, Any]:
        msg = e.message if isinstance(e, GlimpseError) else f"internal error: {e!r}"
        if not isinstance(e, GlimpseError):
            log.error("ingest of %s failed", media_id, exc_info=e)
        else:
            log.info("ingest of %s failed: %s", media_id, msg)
        self._cleanup(media_id, vectors=cleanup_vectors)
        cat = self.core.catalog
        cat.set_media_status(media_id, "failed", error=msg)
        cat.update_job(job_id, status="failed", error=msg, finished_at=utcnow(),
                       timings=timer.ms)
        return {"status": "failed", "error": msg, "timings_ms": timer.ms}

    def _requeue(self, job_id: str, media_id: str, stage: str = "retrying") -> None:
        try:
            self.core.catalog.update_job(job_id, status="queued", stage=stage)
            self.core.catalog.set_media_status(media_id, "queued")
        except Exception:  # noqa: BLE001 - the catalog may be what is down
            log.warning("could not mark job %s for retry", job_id, exc_info=True)

    def _cleanup(self, media_id: str, *, vectors: bool = True) -> None:
        if vectors:
            try:
                self.core.vectors.delete_media(media_id)
                self.core.vectors.flush()
            except Exception:  # noqa: BLE001
                log.warning("cleanup of vectors for %s failed", media_id, exc_info=True)
        try:
            self.core.catalog.delete_views(media_id)
        except Exception:  # noqa: BLE001
            log.warning("cleanup of views for %s failed", media_id, exc_info=True)

    # --------------------------------------------------------- worker topology: ingest

    def staging_path(self, job_id: str) -> Path:
        return self.core.settings.data_dir / "staging" / f"{job_id}.json"

    def stage(self, job_id: str) -> dict[str, Any]:
        """Ingest-queue half of a job: decode the media, keep frame/page images in the
        blob store, write the manifest the model stage reads, mark the job `decoded`.
        Returns {"status": ..., "next": bool}: `next` says a model task should follow.
        Never touches the model or the vector store."""
        cat = self.core.catalog
        job = cat.get_job(job_id)
        if job.status in TERMINAL:
            return {"status": job.status, "next": False, "noop": True}
        if job.status == "running" and job.stage in (STAGE_DECODED, STAGE_MODEL) \
                and self.staging_path(job_id).exists():
            return {"status": "decoded", "next": True, "noop": True}  # a redelivery
        job = cat.start_job(job_id)
        media = cat.get_media(job.media_id)
        cat.set_media_status(media.id, "indexing")
        cat.update_job(job_id, progress=0.05, stage="decode")
        timer = StageTimer()
        try:
            with timer.stage("decode"):
                decoded = self.decode(media)
                manifest = self._manifest(decoded)
                _write_atomic(self.staging_path(job_id), json.dumps(manifest).encode())
        except TRANSIENT:
            self._requeue(job_id, media.id)
            raise
        except Exception as e:  # noqa: BLE001 - recorded on the job, never retried
            out = self.fail(job_id, media.id, e, timer, cleanup_vectors=False)
            return {**out, "next": False}
        cat.update_job(job_id, progress=0.3, stage=STAGE_DECODED, timings=timer.ms)
        return {"status": "decoded", "views": len(decoded.views), "next": True}

    def _manifest(self, decoded: Decoded) -> dict[str, Any]:
        views = []
        for dv in decoded.views:
            v = dv.view
            sha = self.core.blobs.put_bytes(_jpeg(v.image)) if dv.store_image else None
            views.append({"idx": dv.idx, "view_id": v.view_id, "kind": v.kind,
                          "t_start": v.t_start, "t_end": v.t_end, "page": v.page,
                          "text_layer": v.text_layer, "store_image": dv.store_image,
                          "image_sha256": sha, "extra": dv.extra})
        return {"views": views, "warnings": decoded.warnings, "duration_s": decoded.duration_s,
                "width": decoded.width, "height": decoded.height}

    def _load_staged(self, job_id: str, media: MediaRow, timer: StageTimer) -> JobWork:
        """Rebuild a decoded job from its manifest (or decode again if it is gone)."""
        path = self.staging_path(job_id)
        with timer.stage("load"):
            if not path.exists():
                log.info("job %s has no manifest; decoding in the model worker", job_id)
                return JobWork(job_id, media, self.decode(media), timer=timer)
            m = json.loads(path.read_bytes())
            limits = self.core.settings.limits
            views: list[DecodedView] = []
            stored: dict[int, str] = {}
            media_img = None
            for v in m["views"]:
                if v["image_sha256"]:
                    img = load_rgb(self.core.blobs.open_path(v["image_sha256"]))
                    stored[v["idx"]] = v["image_sha256"]
                else:
                    if media_img is None:
                        media_img = load_view_rgb(self.core.blobs.open_path(media.sha256),
                                                  limits)
                    img = media_img
                views.append(DecodedView(
                    ViewInput(view_id=v["view_id"], image=img, kind=v["kind"],
                              t_start=v["t_start"], t_end=v["t_end"], page=v["page"],
                              text_layer=v["text_layer"]),
                    v["idx"], store_image=v["store_image"], extra=v.get("extra") or {}))
            decoded = Decoded(views, warnings=list(m["warnings"]), duration_s=m["duration_s"],
                              width=m["width"], height=m["height"])
            if media.kind == "video" and views:
                from indexer.pipeline.decode_video import summary_view

                decoded.post_encode = lambda encs: [summary_view(media.id, views, encs)]
        return JobWork(job_id, media, decoded, stored=stored, timer=timer)

    # ---------------------------------------------------------- worker topology: model

    def encode_batch(
        self, job_id: str, *, batch_size: int | None = None, wait_s: float | None = None,
        lock_wait_s: float = 300.0,
    ) -> dict[str, Any]:
        """Model-queue half: finish `job_id`, batching it with other decoded jobs.

        Returns only when `job_id` is done or failed (so the caller may ack its message),
        or raises a transient error (the caller retries). Jobs joined from other messages
        are finished here too; their own messages later find them done (a no-op)."""
        q = self.core.settings.queue
        batch_size = max(1, q.model_batch_size if batch_size is None else batch_size)
        wait_s = q.model_batch_wait_s if wait_s is None else wait_s
        cat = self.core.catalog
        locks = JobLocks(cat)
        try:
            own = self._claim_own(locks, job_id, lock_wait_s)
            if own is None:
                job = cat.get_job(job_id)
                return {"status": job.status, "noop": True, "batch": 0}
            works: list[JobWork] = []
            self._add(works, own, locks)
            deadline = time.monotonic() + wait_s
            while self._views(works) < batch_size:
                for cand in self._waiting(exclude={w.job_id for w in works} | locks.held,
                                          limit=batch_size):
                    if self._views(works) >= batch_size:
                        break
                    if locks.try_lock(cand.id):
                        fresh = cat.get_job(cand.id)
                        if fresh.status == "running" and fresh.stage in (STAGE_DECODED,
                                                                          STAGE_MODEL):
                            self._add(works, fresh, locks)
                        else:
                            locks.unlock(cand.id)
                if self._views(works) >= batch_size or time.monotonic() >= deadline:
                    break
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            return self._run_batch(works, job_id)
        finally:
            locks.close()

    def _claim_own(self, locks: JobLocks, job_id: str, lock_wait_s: float) -> JobRow | None:
        """Lock our own job; wait while another live worker holds it. None = terminal."""
        cat = self.core.catalog
        deadline = time.monotonic() + lock_wait_s
        while True:
            job = cat.get_job(job_id)
            if job.status in TERMINAL:
                return None
            if locks.try_lock(job_id):
                job = cat.get_job(job_id)  # it may have finished just before we locked
                if job.status in TERMINAL:
                    return None
                return job
            if time.monotonic() >= deadline:
                raise StoreUnavailable(f"job {job_id} stayed locked by another worker")
            time.sleep(0.25)

    def _add(self, works: list[JobWork], job: JobRow, locks: JobLocks) -> None:
        cat = self.core.catalog
        try:
            media = cat.get_media(job.media_id)
            if job.status != "running":  # a model message for a job never staged
                cat.start_job(job.id)
                cat.set_media_status(media.id, "indexing")
            timer = StageTimer()
            timer.ms.update({k: float(v) for k, v in (job.timings or {}).items()
                             if isinstance(v, (int, float))})
            cat.update_job(job.id, stage=STAGE_MODEL, progress=0.4)
            works.append(self._load_staged(job.id, media, timer))
        except TRANSIENT:
            raise
        except Exception as e:  # noqa: BLE001 - this job alone fails; the batch goes on
            self.fail(job.id, job.media_id, e, StageTimer())
            self._drop_staging(job.id)
            locks.unlock(job.id)

    @staticmethod
    def _views(works: Sequence[JobWork]) -> int:
        return sum(len(w.decoded.views) for w in works)

    def _waiting(self, exclude: set[str], limit: int) -> list[JobRow]:
        with self.core.catalog.session() as s:
            rows = s.scalars(
                # stage `model` with a free lock: orphaned by a dead worker; take it over
                select(JobRow).where(JobRow.status == "running",
                                     JobRow.stage.in_((STAGE_DECODED, STAGE_MODEL)))
                .order_by(JobRow.created_at).limit(limit + len(exclude))
            )
            return [r for r in rows if r.id not in exclude][:limit]

    def _run_batch(self, works: list[JobWork], own_id: str) -> dict[str, Any]:
        if not works:
            job = self.core.catalog.get_job(own_id)
            return {"status": job.status, "batch": 0}
        n_views = self._views(works)
        try:
            try:
                self.encode(works)
            except TRANSIENT:
                raise
            except Exception:  # noqa: BLE001 - find the poison: encode each job alone
                if len(works) == 1:
                    raise
                log.warning("batched model call over %d jobs failed; retrying one by one",
                            len(works), exc_info=True)
                works = self._encode_alone(works)
            done = 0
            for w in works:
                try:
                    with w.timer.stage("persist"):
                        self.persist(w)
                    w.timer.ms["batch_views"] = float(n_views)
                    self.finish(w)
                    done += 1
                except TRANSIENT:
                    raise
                except Exception as e:  # noqa: BLE001
                    self.fail(w.job_id, w.media.id, e, w.timer)
                self._drop_staging(w.job_id)
        except TRANSIENT:
            for w in works:  # leave them claimable by the next batch or their own message
                self._requeue_decoded(w)
            raise
        except Exception as e:  # noqa: BLE001 - the lone job's encode failed
            w = works[0]
            self.fail(w.job_id, w.media.id, e, w.timer)
            self._drop_staging(w.job_id)
        own = self.core.catalog.get_job(own_id)
        return {"status": own.status, "batch": len(works), "batch_views": n_views}

    def _encode_alone(self, works: list[JobWork]) -> list[JobWork]:
        ok: list[JobWork] = []
        for w in works:
            try:
                self.encode([w])
                ok.append(w)
            except TRANSIENT:
                raise
            except Exception as e:  # noqa: BLE001
                self.fail(w.job_id, w.media.id, e, w.timer)
                self._drop_staging(w.job_id)
        return ok

    def _requeue_decoded(self, w: JobWork) -> None:
        try:
            status = self.core.catalog.get_job(w.job_id).status
            if status not in TERMINAL:
                self.core.catalog.update_job(w.job_id, stage=STAGE_DECODED)
        except Exception:  # noqa: BLE001 - the catalog may be what is down
            log.warning("could not release job %s", w.job_id, exc_info=True)

    def _drop_staging(self, job_id: str) -> None:
        self.staging_path(job_id).unlink(missing_ok=True)


def _jpeg(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
