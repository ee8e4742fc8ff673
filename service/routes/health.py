from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from service.deps import AdminAuth, CoreDep

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


@router.get("/metrics", response_class=PlainTextResponse, dependencies=[AdminAuth])
def metrics(core: CoreDep) -> str:
    """Prometheus exposition (all tenants together, so admin keys only): jobs by status,
    media by status, indexed views, and the model's
    own counters where it has them (the glm backend: vision-cache hits and expert routing
    load per MoE layer)."""
    lines = ["# TYPE glimpse_jobs gauge"]
    lines += [f'glimpse_jobs{{status="{st}"}} {n}' for st, n in
              sorted(core.catalog.job_counts().items())]
    lines.append("# TYPE glimpse_media gauge")
    for st in ("queued", "indexing", "ready", "failed"):
        lines.append(f'glimpse_media{{status="{st}"}} {core.catalog.count_media(st)}')
    lines += ["# TYPE glimpse_views gauge", f"glimpse_views {core.catalog.count_views()}"]
    model = core.model
    gen = getattr(model, "generator", None)
    for m in (model, getattr(model, "embedder", None), gen):
        text = getattr(m, "metrics_text", None)
        if callable(text):
            lines.append(str(text()).rstrip())
    return "\n".join(lines) + "\n"
