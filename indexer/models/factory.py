"""Choose a model backend by settings. Models are built lazily and never at import time."""

from __future__ import annotations

from indexer.errors import ModelUnavailable
from indexer.models.base import VisionLanguageModel
from indexer.settings import Settings


def build_model(settings: Settings) -> VisionLanguageModel:
    match settings.model.backend:
        case "cpu":
            from indexer.models.cpu import CpuModel

            return CpuModel(settings.model)
        case "glm":
            from indexer.models.glm import GlmModel

            return GlmModel(settings.model)
        case "openai":
            from indexer.models.composite import CompositeModel
            from indexer.models.openai_backend import OpenAIModel

            embed_settings = settings.model.model_copy(update={"backend":
                                                               settings.model.embed_backend})
            embedder = build_model(settings.model_copy(update={"model": embed_settings}))
            return CompositeModel(embedder, OpenAIModel(settings.model))
        case other:
            raise ModelUnavailable(f"unknown model backend {other!r}; use cpu, glm or openai")
