"""The catalog: SQL source of truth for media, views, descriptions, jobs and sessions.

SQLAlchemy 2 on SQLite (embedded default) or Postgres (production); the schema is owned by
the Alembic migrations in `migrations/`. Lexical search uses each engine's own full-text
index: FTS5 on SQLite, a GIN `tsvector` index on Postgres.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from indexer.domain import Description
from indexer.errors import NotFound, StoreUnavailable

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class MediaRow(Base):
    __tablename__ = "media"
    __table_args__ = (UniqueConstraint("tenant", "sha256", name="uq_media_tenant_sha256"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # image | video | document
    mime: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    filename: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # upload | generated (made by /v1/generations; never a source for another generation)
    origin: Mapped[str] = mapped_column(String(16), default="upload", server_default="upload")
    # queued | indexing | ready | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ViewRow(Base):
    __tablename__ = "views"
    __table_args__ = (UniqueConstraint("media_id", "idx", name="uq_views_media_idx"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # f"{media_id}:{idx}"
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    idx: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # image | frame | page | summary
    t_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    t_end: Mapped[float | None] = mapped_column(Float, nullable=True)
    page: Mapped[int | None] = mapped_column(Integer, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caption: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    media_id: Mapped[str] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="ingest")
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    query: Mapped[dict[str, Any]] = mapped_column(JSON)
    results: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class TurnRow(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("session_id", "idx", name="uq_turns_session_idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    idx: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExtractionRow(Base):
    __tablename__ = "extractions"

    view_id: Mapped[str] = mapped_column(
        ForeignKey("views.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(128))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass
class ViewRecord:
    """A view as the rest of the code sees it: plain values, detached from any session."""

    id: str
    media_id: str
    tenant: str
    idx: int
    kind: str
    t_start: float | None
    t_end: float | None
    page: int | None
    width: int | None
    height: int | None
    image_sha256: str | None
    description: Description

    @property
    def caption(self) -> str:
        return self.description.caption


def _view_record(row: ViewRow) -> ViewRecord:
    return ViewRecord(
        id=row.id, media_id=row.media_id, tenant=row.tenant, idx=row.idx, kind=row.kind,
        t_start=row.t_start, t_end=row.t_end, page=row.page, width=row.width,
        height=row.height, image_sha256=row.image_sha256,
        description=Description.from_dict(row.description or {"caption": row.caption}),
    )


@dataclass
class NewView:
    idx: int
    kind: str
    description: Description
    t_start: float | None = None
    t_end: float | None = None
    page: int | None = None
    width: int | None = None
    height: int | None = None
    image_sha256: str | None = None


_STOP = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "with", "and", "or", "is", "are",
    "was", "be", "this", "that", "these", "those", "it", "its", "photo", "picture", "image",
    "show", "shows", "showing", "me", "find",
})
_WORD = re.compile(r"[\w][\w'-]*", re.UNICODE)


def search_terms(query: str) -> list[str]:
    """Lower-cased content words of a query, stop words removed, order kept, de-duplicated."""
    seen: dict[str, None] = {}
    for w in _WORD.findall(query.lower()):
        w = w.strip("'-")
        if len(w) > 1 and w not in _STOP:
            seen.setdefault(w, None)
    return list(seen)


def build_search_text(d: Description) -> str:
    parts = [d.caption]
    parts += [t.label for t in d.tags]
    parts += [o.label for o in d.objects]
    parts += [line.text for line in d.ocr]
    text_layer = d.extra.get("text_layer")
    if isinstance(text_layer, str):
        parts.append(text_layer)
    return " ".join(p for p in parts if p)


def media_id_for(tenant: str, sha256: str) -> str:
    """Deterministic: the same bytes uploaded twice by a tenant get the same id."""
    return "m_" + uuid.uuid5(uuid.NAMESPACE_URL, f"glimpse:{tenant}:{sha256}").hex[:24]


class Catalog:
    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False) -> None:
        self.url = url
        kw: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kw.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kw)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- plumbing -------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        s = self._sessions()
        try:
            yield s
            s.commit()
        except OperationalError as e:
            s.rollback()
            raise StoreUnavailable(f"catalog unavailable: {e.orig}") from e
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def migrate(self) -> None:
        from migrations import upgrade_head

        upgrade_head(self.url)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health check reports, never raises
            return False

    def close(self) -> None:
        self.engine.dispose()

    # -- media ----------------------------------------------------------------------------
    def add_media(
        self, *, tenant: str, sha256: str, kind: str, mime: str, size: int,
        width: int | None = None, height: int | None = None, filename: str | None = None,
        duration_s: float | None = None, origin: str = "upload",
    ) -> tuple[MediaRow, bool]:
        """Insert a media row, or return the existing one for the same bytes. (row, created)"""
        mid = media_id_for(tenant, sha256)
        with self.session() as s:
            existing = s.get(MediaRow, mid)
            if existing is not None:
                return existing, False
            row = MediaRow(
                id=mid, tenant=tenant, sha256=sha256, kind=kind, mime=mime, size=size,
                width=width, height=height, filename=filename, duration_s=duration_s,
                status="queued", warnings=[], origin=origin,
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError:  # a concurrent upload of the same bytes won the race
                s.rollback()
                got = s.get(MediaRow, mid)
                if got is None:
                    raise
                return got, False
            return row, True

    def get_media(self, media_id: str) -> MediaRow:
        with self.session() as s:
            row = s.get(MediaRow, media_id)
            if row is None:
                raise NotFound(f"media {media_id!r} not found")
            return row

    def list_media(self, *, tenant: str, limit: int = 100, offset: int = 0) -> list[MediaRow]:
        """One tenant's media, newest first (the tenant is required: no unscoped listing)."""
        with self.session() as s:
            q = (select(MediaRow).where(MediaRow.tenant == tenant)
                 .order_by(MediaRow.created_at.desc(), MediaRow.id).limit(limit).offset(offset))
            return list(s.scalars(q))

    def media_by_ids(self, ids: Sequence[str]) -> dict[str, MediaRow]:
        if not ids:
            return {}
        with self.session() as s:
            return {m.id: m for m in s.scalars(select(MediaRow).where(MediaRow.id.in_(ids)))}

    def media_versions(self, ids: Sequence[str]) -> dict[str, datetime]:
        """When each media row last changed (a re-index rewrites it): cheap cache keys."""
        if not ids:
            return {}
        with self.session() as s:
            rows = s.execute(select(MediaRow.id, MediaRow.updated_at)
                             .where(MediaRow.id.in_(list(ids)))).all()
            return {str(i): t for i, t in rows}

    def set_media_status(
        self, media_id: str, status: str, *, error: str | None = None,
        warnings: list[str] | None = None, **fields: Any,
    ) -> None:
        values: dict[str, Any] = {"status": status, "error": error, "updated_at": utcnow()}
        if warnings is not None:
            values["warnings"] = warnings
        values.update(fields)
        with self.session() as s:
            s.execute(update(MediaRow).where(MediaRow.id == media_id).values(**values))

    def delete_media(self, media_id: str) -> list[str]:
        """Remove a media with its views (and their full-text rows), jobs and extractions.
        Returns the blob names no remaining media or view refers to (safe to delete: the
        same bytes uploaded by another tenant share one blob)."""
        with self.session() as s:
            row = s.get(MediaRow, media_id)
            if row is None:
                raise NotFound(f"media {media_id!r} not found")
            views = list(s.scalars(select(ViewRow).where(ViewRow.media_id == media_id)))
            shas = {row.sha256} | {v.image_sha256 for v in views if v.image_sha256}
            self._fts_delete(s, [v.id for v in views])
            s.execute(delete(ExtractionRow).where(
                ExtractionRow.view_id.in_([v.id for v in views])))
            s.execute(delete(ViewRow).where(ViewRow.media_id == media_id))
            s.execute(delete(JobRow).where(JobRow.media_id == media_id))
            s.execute(delete(MediaRow).where(MediaRow.id == media_id))
            s.flush()
            used = set(s.scalars(select(MediaRow.sha256).where(MediaRow.sha256.in_(shas))))
            used |= set(s.scalars(select(ViewRow.image_sha256)
                                  .where(ViewRow.image_sha256.in_(shas))))
        return sorted(shas - used)

    def count_media(self, status: str | None = None) -> int:
        with self.session() as s:
            q = select(func.count()).select_from(MediaRow)
            if status:
                q = q.where(MediaRow.status == status)
            return int(s.scalar(q) or 0)

    # -- views ----------------------------------------------------------------------------
    def replace_views(self, media_id: str, tenant: str, views: Sequence[NewView]) -> list[str]:
        """Atomically replace every view of a media (idempotent re-indexing)."""
        ids = [f"{media_id}:{v.idx}" for v in views]
        with self.session() as s:
            old = list(s.scalars(select(ViewRow.id).where(ViewRow.media_id == media_id)))
            if old:
                self._fts_delete(s, old)
                s.execute(delete(ViewRow).where(ViewRow.media_id == media_id))
            for vid, v in zip(ids, views, strict=True):
                st = build_search_text(v.description)
                s.add(ViewRow(
                    id=vid, media_id=media_id, tenant=tenant, idx=v.idx, kind=v.kind,
                    t_start=v.t_start, t_end=v.t_end, page=v.page, width=v.width,
                    height=v.height, image_sha256=v.image_sha256,
                    caption=v.description.caption, description=v.description.to_dict(),
                    search_text=st,
                ))
            s.flush()
            self._fts_insert(s, [(vid, tenant, v.kind, build_search_text(v.description))
                                 for vid, v in zip(ids, views, strict=True)])
        return ids

    def delete_views(self, media_id: str) -> None:
        with self.session() as s:
            old = list(s.scalars(select(ViewRow.id).where(ViewRow.media_id == media_id)))
            if old:
                self._fts_delete(s, old)
                s.execute(delete(ViewRow).where(ViewRow.media_id == media_id))

    def views_of(self, media_id: str) -> list[ViewRecord]:
        with self.session() as s:
            rows = s.scalars(
                select(ViewRow).where(ViewRow.media_id == media_id).order_by(ViewRow.idx)
            )
            return [_view_record(r) for r in rows]

    def views_by_ids(self, ids: Sequence[str]) -> dict[str, ViewRecord]:
        if not ids:
            return {}
        with self.session() as s:
            rows = s.scalars(select(ViewRow).where(ViewRow.id.in_(list(ids))))
            return {r.id: _view_record(r) for r in rows}

    def get_view(self, view_id: str) -> ViewRecord:
        got = self.views_by_ids([view_id]).get(view_id)
        if got is None:
            raise NotFound(f"view {view_id!r} not found")
        return got

    def count_views(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(ViewRow)) or 0)

    def iter_views(self, batch: int = 500) -> Iterator[list[ViewRecord]]:
        """Every view, in batches, for rebuilding the vector index from the catalog."""
        last = ""
        while True:
            with self.session() as s:
                rows = list(s.scalars(
                    select(ViewRow).where(ViewRow.id > last).order_by(ViewRow.id).limit(batch)
                ))
            if not rows:
                return
            last = rows[-1].id
            yield [_view_record(r) for r in rows]

    # -- lexical search -------------------------------------------------------------------
    def lexical_search(
        self, query: str, *, k: int = 100, tenant: str | None = None,
        kinds: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """(view_id, score) best first; score is higher-is-better and engine specific."""
        terms = search_terms(query)
        if not terms:
            return []
        with self.session() as s:
            if self.dialect == "sqlite":
                match = " OR ".join('"' + t.replace('"', "") + '"' for t in terms)
                sql = ("SELECT view_id, -bm25(view_fts) AS score FROM view_fts "
                       "WHERE view_fts MATCH :q")
                params: dict[str, Any] = {"q": match, "k": k}
                if tenant:
                    sql += " AND tenant = :tenant"
                    params["tenant"] = tenant
                sql += " ORDER BY bm25(view_fts) LIMIT :k"
                rows = s.execute(text(sql), params).all()
            else:
                tsq = " | ".join(re.sub(r"[^\w]", "", t) for t in terms if re.sub(r"[^\w]", "", t))
                if not tsq:
                    return []
                sql = ("SELECT id, ts_rank_cd(to_tsvector('simple', search_text), q) AS score "
                       "FROM views, to_tsquery('simple', :q) q "
                       "WHERE to_tsvector('simple', search_text) @@ q")
                params = {"q": tsq, "k": k}
                if tenant:
                    sql += " AND tenant = :tenant"
                    params["tenant"] = tenant
                sql += " ORDER BY score DESC LIMIT :k"
                rows = s.execute(text(sql), params).all()
        out = [(str(r[0]), float(r[1])) for r in rows]
        if kinds:
            kinds_set = set(kinds)
            recs = self.views_by_ids([v for v, _ in out])
            media = self.media_by_ids(list({r.media_id for r in recs.values()}))
            out = [(v, sc) for v, sc in out
                   if v in recs and media[recs[v].media_id].kind in kinds_set]
        return out

    def _fts_insert(self, s: Session, rows: list[tuple[str, str, str, str]]) -> None:
        if self.dialect != "sqlite" or not rows:
            return
        s.execute(
            text("INSERT INTO view_fts(view_id, tenant, kind, body) VALUES (:v, :t, :k, :b)"),
            [{"v": v, "t": t, "k": k, "b": b} for v, t, k, b in rows],
        )

    def _fts_delete(self, s: Session, view_ids: list[str]) -> None:
        if self.dialect != "sqlite" or not view_ids:
            return
        s.execute(text("DELETE FROM view_fts WHERE view_id = :v"), [{"v": v} for v in view_ids])

    # -- extractions ----------------------------------------------------------------------
    def get_extraction(self, view_id: str, kind: str, model_id: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(ExtractionRow, (view_id, kind))
            if row is None or row.model_id != model_id:
                return None
            return dict(row.result)

    def put_extraction(self, view_id: str, kind: str, model_id: str,
                       result: dict[str, Any]) -> None:
        with self.session() as s:
            row = s.get(ExtractionRow, (view_id, kind))
            if row is None:
                s.add(ExtractionRow(view_id=view_id, kind=kind, model_id=model_id,
                                    result=result))
            else:
                row.model_id, row.result, row.created_at = model_id, result, utcnow()

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, media_id: str, kind: str = "ingest") -> JobRow:
        with self.session() as s:
            row = JobRow(id="j_" + uuid.uuid4().hex[:24], media_id=media_id, kind=kind,
                         status="queued", progress=0.0, warnings=[], timings={})
            s.add(row)
            return row

    def get_job(self, job_id: str) -> JobRow:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id!r} not found")
            return row

    def latest_job(self, media_id: str) -> JobRow | None:
        with self.session() as s:
            return s.scalars(
                select(JobRow).where(JobRow.media_id == media_id)
                .order_by(JobRow.created_at.desc()).limit(1)
            ).first()

    def update_job(self, job_id: str, **fields: Any) -> None:
        with self.session() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**fields))

    def update_jobs(self, job_ids: Sequence[str], **fields: Any) -> None:
        """The same fields on several jobs, one statement (a batch moving to its next stage)."""
        if job_ids:
            with self.session() as s:
                s.execute(update(JobRow).where(JobRow.id.in_(list(job_ids))).values(**fields))

    def finish_job(self, job_id: str, media_id: str, media: dict[str, Any],
                   job: dict[str, Any]) -> None:
        """Media ready and job done in one transaction: a reader never sees one without
        the other."""
        now = utcnow()
        with self.session() as s:
            s.execute(update(MediaRow).where(MediaRow.id == media_id).values(
                status="ready", error=None, updated_at=now, **media))
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**job))

    def start_job(self, job_id: str, *, stage: str | None = None,
                  progress: float | None = None) -> JobRow:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"job {job_id!r} not found")
            if stage is not None:
                row.stage = stage
            if progress is not None:
                row.progress = progress
            row.status = "running"
            row.attempts = (row.attempts or 0) + 1
            row.started_at = utcnow()
            row.error = None
            return row

    def jobs_with_status(self, *statuses: str) -> list[JobRow]:
        with self.session() as s:
            return list(s.scalars(
                select(JobRow).where(JobRow.status.in_(statuses)).order_by(JobRow.created_at)
            ))

    def job_counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
            return {str(st): int(n) for st, n in rows}


class SessionStore:
    """Search sessions and their turns, in the catalog. A session belongs to its tenant
    (another tenant's id is not found), expires after `idle_s` without use, and a tenant
    keeps at most `max_live` sessions (opening one more drops the least recently used)."""

    def __init__(self, catalog: Catalog, *, idle_s: float = 86400.0,
                 max_live: int = 1000) -> None:
        self.catalog = catalog
        self.idle_s = idle_s
        self.max_live = max_live

    def _cutoff(self) -> datetime:
        return utcnow() - timedelta(seconds=self.idle_s)

    def create(self, tenant: str, query: dict[str, Any], results: list[dict[str, Any]]) -> str:
        sid = "s_" + uuid.uuid4().hex[:24]
        with self.catalog.session() as s:
            s.execute(delete(SessionRow).where(SessionRow.tenant == tenant,
                                               SessionRow.updated_at < self._cutoff()))
            live = int(s.scalar(select(func.count()).select_from(SessionRow)
                                .where(SessionRow.tenant == tenant)) or 0)
            if live >= self.max_live:
                old = list(s.scalars(
                    select(SessionRow.id).where(SessionRow.tenant == tenant)
                    .order_by(SessionRow.updated_at, SessionRow.id)
                    .limit(live - self.max_live + 1)))
                s.execute(delete(TurnRow).where(TurnRow.session_id.in_(old)))
                s.execute(delete(SessionRow).where(SessionRow.id.in_(old)))
            s.add(SessionRow(id=sid, tenant=tenant, query=query, results=results))
        return sid

    def get(self, session_id: str, *, tenant: str) -> SessionRow:
        with self.catalog.session() as s:
            row = s.get(SessionRow, session_id)
            if row is None or row.tenant != tenant or _aware(row.updated_at) < self._cutoff():
                raise NotFound(f"session {session_id!r} not found")
            return row

    def live_count(self, tenant: str) -> int:
        with self.catalog.session() as s:
            return int(s.scalar(select(func.count()).select_from(SessionRow).where(
                SessionRow.tenant == tenant, SessionRow.updated_at >= self._cutoff())) or 0)

    def turns(self, session_id: str) -> list[TurnRow]:
        with self.catalog.session() as s:
            return list(s.scalars(
                select(TurnRow).where(TurnRow.session_id == session_id).order_by(TurnRow.idx)
            ))

    def recent_turns(self, session_id: str, n: int) -> list[TurnRow]:
        """The last `n` turns in order: what a follow-up needs (the previous answer's
        results, the model's history window), without reading the whole conversation."""
        if n <= 0:
            return []
        with self.catalog.session() as s:
            rows = list(s.scalars(
                select(TurnRow).where(TurnRow.session_id == session_id)
                .order_by(TurnRow.idx.desc()).limit(n)))
        return rows[::-1]

    def add_turns(self, session_id: str, turns: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Append (role, text, payload) turns atomically, numbered after the last one."""
        with self.catalog.session() as s:
            last = s.scalar(select(func.max(TurnRow.idx)).where(TurnRow.session_id == session_id))
            n = -1 if last is None else int(last)
            for role, text_, payload in turns:
                n += 1
                s.add(TurnRow(session_id=session_id, idx=n, role=role, text=text_,
                              payload=payload))
            s.execute(update(SessionRow).where(SessionRow.id == session_id)
                      .values(updated_at=utcnow()))


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
