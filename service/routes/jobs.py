from __future__ import annotations

from fastapi import APIRouter

from indexer.errors import NotFound
from service.deps import ScopedDep
from service.schemas import JobOut

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, cat: ScopedDep) -> JobOut:
    """An ingest job (kind "ingest", its media_id), or the job of a generation (kind
    "generation", its generation_id and, once done, its first generated media_id)."""
    try:
        j = cat.job(job_id)
    except NotFound:
        g = cat.generation_by_job(job_id)  # NotFound again: 404, like any unknown id
        return JobOut(
            job_id=g.job_id, kind="generation", generation_id=g.id,
            media_id=(g.media_ids or [None])[0],
            status=g.status,  # type: ignore[arg-type]
            progress=1.0 if g.status == "done" else 0.0, stage=g.status, error=g.error,
            warnings=[], attempts=1, timings_ms={}, created_at=g.created_at,
            finished_at=g.finished_at,
        )
    return JobOut(
        job_id=j.id, media_id=j.media_id, status=j.status,  # type: ignore[arg-type]
        progress=j.progress, stage=j.stage, error=j.error, warnings=j.warnings or [],
        attempts=j.attempts, timings_ms=j.timings or {}, created_at=j.created_at,
        finished_at=j.finished_at,
    )
