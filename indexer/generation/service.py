"""Generations as a resource: a request is recorded, run in the background, and its images
are stored as media of their own (origin "generated"), indexed by the normal pipeline so they
are searchable, and never deduplicated into a source (each PNG carries its generation id in a
text chunk, so its bytes, and so its media id, are its own).

Generation runs in a small thread pool of the process that took the request (the embedded
default, the CLI), or, with a broker, as a `glimpse.generate` task on the model queue; the
generated images' indexing goes through the usual enqueuer (the in-process runner, or Celery).
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import JSON, DateTime, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from indexer.errors import GlimpseError, InvalidRequest, NotFound
from indexer.generation.base import Generated, Generator, MissingConcept, parse_size
from indexer.stores.catalog import Base, utcnow

if TYPE_CHECKING:
    from indexer.context import Glimpse
    from indexer.ingest import Enqueuer

log = logging.getLogger(__name__)

BACKENDS = ("cpu", "diffusion", "openai")
MAX_SEED = 2**31 - 1


class GenerationRow(Base):
    __tablename__ = "generations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str] = mapped_column(String(40), unique=True)
    prompt: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    backend: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # queued | running | done | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    media_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    results: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                         nullable=True)


@dataclass
class GenerationRequest:
    prompt: str
    n: int = 1
    size: str | int | None = "512x512"
    seed: int | None = None
    backend: str | None = None


def build_generator(core: Glimpse, backend: str) -> Generator:
    """One factory for the generation backends (one `match`, a clear error otherwise)."""
    g = core.settings.generation
    match backend:
        case "cpu":
            from indexer.generation.cpu import CompositionGenerator
            from indexer.generation.library import IndexLibrary

            return CompositionGenerator(lambda tenant: IndexLibrary(core, tenant), core.model,
                                        max_attempts=g.max_attempts, blend=g.blend)
        case "diffusion":
            from indexer.generation.diffusion import DiffusionGenerator

            return DiffusionGenerator.from_settings(core, g)
        case "openai":
            from indexer.generation.openai_images import OpenAIImagesGenerator

            return OpenAIImagesGenerator.from_settings(g, core.model)
    raise InvalidRequest(f"unknown generation backend {backend!r}; use one of "
                         f"{', '.join(BACKENDS)}")


def encode_png(image: Image.Image, generation_id: str, index: int, prompt: str,
               seed: int) -> bytes:
    info = PngInfo()
    info.add_text("glimpse:generation", f"{generation_id}:{index}")
    info.add_text("glimpse:seed", str(seed))
    info.add_itxt("glimpse:prompt", prompt[:1000])
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", pnginfo=info, optimize=False)
    return buf.getvalue()


class GenerationService:
    def __init__(self, core: Glimpse, enqueuer: Enqueuer, *, workers: int = 1,
                 recover: bool = True) -> None:
        self.core = core
        self.enqueuer = enqueuer
        self._workers = max(1, workers)
        self._pool: ThreadPoolExecutor | None = None
        self._generators: dict[str, Generator] = {}
        self._lock = threading.Lock()
        # with a broker, queued requests wait in it and are not this process's to fail
        if recover and not core.settings.uses_broker:
            self._interrupted()

    # -- requests --------------------------------------------------------------------------
    def validate(self, req: GenerationRequest) -> tuple[str, tuple[int, int], int]:
        """(backend, size, seed) or InvalidRequest/MissingConcept, before anything runs."""
        gs = self.core.settings.generation
        if not 1 <= req.n <= gs.max_n:
            raise InvalidRequest(f"n is {req.n}; between 1 and {gs.max_n} images per request")
        size = parse_size(req.size, max_side=gs.max_side)
        seed = req.seed if req.seed is not None else uuid.uuid4().int % MAX_SEED
        if not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(f"seed must be between 0 and {MAX_SEED}")
        backend = req.backend or gs.backend
        if backend not in BACKENDS:
            raise InvalidRequest(f"unknown generation backend {backend!r}; use one of "
                                 f"{', '.join(BACKENDS)}")
        from indexer.generation.prompt import MAX_PROMPT_CHARS, parse

        if backend == "cpu":
            parse(req.prompt)  # 4xx for a prompt the grammar cannot use
        elif not req.prompt.strip() or len(req.prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequest(f"the prompt must be 1..{MAX_PROMPT_CHARS} characters")
        return backend, size, seed

    def generator(self, backend: str) -> Generator:
        with self._lock:
            if backend not in self._generators:
                self._generators[backend] = build_generator(self.core, backend)
            return self._generators[backend]

    def precheck(self, backend: str, prompt: str, tenant: str) -> None:
        """The cpu backend answers a missing concept at once (422 naming it)."""
        gen = self.generator(backend)
        missing = getattr(gen, "missing", None)
        if callable(missing):
            names = missing(prompt, tenant)
            if names:
                raise MissingConcept(
                    "the index has nothing showing " + ", ".join(f"'{m}'" for m in names)
                    + "; index images of it first (nothing was generated)",
                    detail={"missing": names})

    def submit(self, tenant: str, req: GenerationRequest) -> tuple[str, str]:
        """Record the request and start it in the background: (generation id, job id)."""
        gid, jid = self._record(tenant, req)
        to_queue = getattr(self.enqueuer, "enqueue_generation", None)
        if callable(to_queue):  # Celery: a model-queue worker runs it
            to_queue(gid)
        else:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._workers,
                                                    thread_name_prefix="glimpse-gen")
            self._pool.submit(self.run, gid)
        return gid, jid

    def run_now(self, tenant: str, req: GenerationRequest) -> GenerationRow:
        """Record the request and run it in the calling thread (the CLI, the bench)."""
        gid, _ = self._record(tenant, req)
        self.run(gid)
        return self._row(gid)

    def _record(self, tenant: str, req: GenerationRequest) -> tuple[str, str]:
        backend, size, seed = self.validate(req)
        self.precheck(backend, req.prompt, tenant)
        gid = "g_" + uuid.uuid4().hex[:24]
        jid = "j_" + uuid.uuid4().hex[:24]
        params = {"n": req.n, "size": f"{size[0]}x{size[1]}", "seed": seed}
        with self.core.catalog.session() as s:
            s.add(GenerationRow(id=gid, tenant=tenant, job_id=jid, prompt=req.prompt,
                                params=params, backend=backend, status="queued",
                                media_ids=[], results=[]))
        return gid, jid

    def run(self, gid: str) -> None:
        """Generate every image of a request and store each as generated media."""
        row = self._row(gid)
        self._update(gid, status="running")
        try:
            gen = self.generator(row.backend)
            w, h = (int(x) for x in row.params["size"].split("x"))
            media_ids: list[str] = []
            results: list[dict[str, Any]] = []
            for i in range(int(row.params["n"])):
                seed = int(row.params["seed"]) + i
                out = gen.generate(row.prompt, seed, size=(w, h), tenant=row.tenant)
                mid, job = self._store(row, i, seed, out)
                media_ids.append(mid)
                results.append({"media_id": mid, "ingest_job_id": job, "seed": seed,
                                **out.record()})
                self._update(gid, media_ids=list(media_ids), results=list(results))
            self._update(gid, status="done", finished_at=utcnow())
        except GlimpseError as e:
            self._update(gid, status="failed", error=e.message, error_detail=e.detail or None,
                         finished_at=utcnow())
        except Exception as e:  # noqa: BLE001 - the request records why, the pool survives
            log.exception("generation %s failed", gid)
            self._update(gid, status="failed", error=f"generation failed: {e}",
                         finished_at=utcnow())

    def _store(self, row: GenerationRow, i: int, seed: int, out: Generated
               ) -> tuple[str, str | None]:
        data = encode_png(out.image, row.id, i, row.prompt, seed)
        sha = self.core.blobs.put_bytes(data)
        media, created = self.core.catalog.add_media(
            tenant=row.tenant, sha256=sha, kind="image", mime="image/png", size=len(data),
            width=out.image.width, height=out.image.height,
            filename=f"{row.id}-{i}.png", origin="generated")
        if not created and media.origin != "generated":  # cannot happen: the bytes hold the id
            raise GlimpseError("a generated image collided with a source's bytes")
        job = self.core.catalog.create_job(media.id)
        self.enqueuer.enqueue_ingest(job.id)
        return media.id, job.id

    # -- reads -----------------------------------------------------------------------------
    def get(self, tenant: str, gid: str) -> GenerationRow:
        row = self._row(gid)
        if row.tenant != tenant:  # another tenant's generation looks like an unknown one
            raise NotFound(f"generation {gid!r} not found")
        return row

    def list(self, tenant: str, limit: int = 20) -> list[GenerationRow]:
        with self.core.catalog.session() as s:
            return list(s.scalars(select(GenerationRow).where(GenerationRow.tenant == tenant)
                                  .order_by(GenerationRow.created_at.desc()).limit(limit)))

    def _row(self, gid: str) -> GenerationRow:
        with self.core.catalog.session() as s:
            row = s.get(GenerationRow, gid)
            if row is None:
                raise NotFound(f"generation {gid!r} not found")
            return row

    def _update(self, gid: str, **fields: Any) -> None:
        fields["updated_at"] = utcnow()
        with self.core.catalog.session() as s:
            s.execute(update(GenerationRow).where(GenerationRow.id == gid).values(**fields))

    def _interrupted(self) -> None:
        """Requests a previous process left unfinished fail with a reason (they are cheap to
        ask again; a half-made image is not resumed)."""
        try:
            with self.core.catalog.session() as s:
                s.execute(update(GenerationRow)
                          .where(GenerationRow.status.in_(("queued", "running")))
                          .values(status="failed", error="interrupted by a server restart",
                                  finished_at=utcnow(), updated_at=utcnow()))
        except GlimpseError:
            log.warning("could not mark interrupted generations", exc_info=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def generation_dict(row: GenerationRow, media_status: dict[str, str] | None = None
                    ) -> dict[str, Any]:
    """What GET /v1/generations/{id} answers."""
    results = []
    for r in row.results or []:
        results.append({
            "media_id": r["media_id"], "seed": r["seed"], "ingest_job_id": r.get("ingest_job_id"),
            "media_status": (media_status or {}).get(r["media_id"]),
            "file_url": f"/v1/media/{r['media_id']}/file",
            "provenance": r.get("provenance", []), "checks": r.get("checks", []),
            "satisfied": bool(r.get("checks")) and all(c["satisfied"] for c in r["checks"]),
            "scores": r.get("scores", {}), "attempts": r.get("attempts"),
            "timings_ms": r.get("timings_ms", {}), "notes": r.get("notes", []),
            "plan": r.get("plan"),
        })
    return {
        "generation_id": row.id, "job_id": row.job_id, "status": row.status,
        "prompt": row.prompt, "backend": row.backend, "params": row.params,
        "media_ids": list(row.media_ids or []), "results": results,
        "error": row.error, "error_detail": row.error_detail,
        "created_at": row.created_at, "finished_at": row.finished_at,
    }
