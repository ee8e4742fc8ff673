"""Choose a model backend by settings. Models are built lazily and never at import time.

`backend` names what describes views and answers (cpu, glm, or an openai-compatible server);
`embed_backend=clip` puts a CLIP-family checkpoint's vector space and zero-shot tags beside it.
"""

from __future__ import annotations

from pathlib import Path

from indexer.errors import ModelUnavailable
from indexer.models.base import VisionLanguageModel
from indexer.settings import Settings


def build_model(settings: Settings) -> VisionLanguageModel:
    m = settings.model
    match m.backend:
        case "cpu" | "glm":
            base = _local(settings)
            if m.embed_backend != "clip":
                return base
            from indexer.models.clip import ClipEmbedder, ClipModel

            cache = Path(m.cache_dir).expanduser() if m.cache_dir else None
            return ClipModel(ClipEmbedder(m), base, cache)
        case "openai":
            from indexer.models.composite import CompositeModel
            from indexer.models.openai_backend import OpenAIModel

            # the local embedder: glm as is, cpu alone or cpu described beside clip vectors
            local = "glm" if m.embed_backend == "glm" else "cpu"
            embed_settings = m.model_copy(update={"backend": local})
            embedder = build_model(settings.model_copy(update={"model": embed_settings}))
            return CompositeModel(embedder, OpenAIModel(m))
        case other:
            raise ModelUnavailable(f"unknown model backend {other!r}; use cpu, glm or openai")


def _local(settings: Settings) -> VisionLanguageModel:
    if settings.model.backend == "glm":
        from indexer.models.glm import GlmModel

        return GlmModel(settings.model)
    from indexer.models.cpu import CpuModel

    return CpuModel(settings.model)
