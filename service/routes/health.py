from __future__ import annotations

from fastapi import APIRouter

from service.deps import CoreDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(core: CoreDep) -> dict[str, object]:
    ok = core.catalog.ping()
    return {
        "status": "ok" if ok else "degraded",
        "catalog": "ok" if ok else "unreachable",
        "model": core.settings.model.backend,
        "vectors": core.settings.vectors.backend,
        "queue": "celery" if core.settings.uses_broker else "in-process",
    }
