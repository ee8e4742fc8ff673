from __future__ import annotations

from fastapi import APIRouter

from service.deps import ScopedDep
from service.schemas import JobOut

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, cat: ScopedDep) -> JobOut:
    j = cat.job(job_id)
    return JobOut(
        job_id=j.id, media_id=j.media_id, status=j.status,  # type: ignore[arg-type]
        progress=j.progress, stage=j.stage, error=j.error, warnings=j.warnings or [],
        attempts=j.attempts, timings_ms=j.timings or {}, created_at=j.created_at,
        finished_at=j.finished_at,
    )
