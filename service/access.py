"""The one place that answers "may this tenant see this id": every catalog read an HTTP
route makes goes through a `TenantCatalog`, built per request from the request's key. An id
of another tenant is answered exactly like an unknown one (same 404, same message)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from indexer.context import Glimpse
from indexer.errors import NotFound
from indexer.stores.catalog import JobRow, MediaRow, ViewRecord

if TYPE_CHECKING:
    from indexer.generation.service import GenerationRow


class TenantCatalog:
    def __init__(self, core: Glimpse, tenant: str) -> None:
        self.core = core
        self.tenant = tenant

    def media(self, media_id: str) -> MediaRow:
        try:
            m = self.core.catalog.get_media(media_id)
        except NotFound:
            m = None
        if m is None or m.tenant != self.tenant:
            raise NotFound(f"media {media_id!r} not found")
        return m

    def list_media(self, *, limit: int, offset: int) -> list[MediaRow]:
        return self.core.catalog.list_media(tenant=self.tenant, limit=limit, offset=offset)

    def views_of(self, media_id: str) -> list[ViewRecord]:
        self.media(media_id)
        return [v for v in self.core.catalog.views_of(media_id) if v.tenant == self.tenant]

    def view(self, media_id: str, idx: int) -> tuple[MediaRow, ViewRecord]:
        m = self.media(media_id)
        v = self.core.catalog.views_by_ids([f"{media_id}:{idx}"]).get(f"{media_id}:{idx}")
        if v is None or v.tenant != self.tenant:
            raise NotFound(f"view {media_id}:{idx} not found")
        return m, v

    def job(self, job_id: str) -> JobRow:
        try:
            j = self.core.catalog.get_job(job_id)
            self.media(j.media_id)
        except NotFound:
            raise NotFound(f"job {job_id!r} not found") from None
        return j

    def generation_by_job(self, job_id: str) -> GenerationRow:
        """The generation a job id belongs to (POST /v1/generations answers with both)."""
        from sqlalchemy import select

        from indexer.generation.service import GenerationRow

        with self.core.catalog.session() as s:
            row = s.scalars(select(GenerationRow).where(GenerationRow.job_id == job_id)).first()
            if row is None or row.tenant != self.tenant:
                raise NotFound(f"job {job_id!r} not found")
            s.expunge(row)
            return row
