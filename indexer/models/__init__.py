"""The model layer: one protocol, several backends, chosen by `build_model(settings)`."""

from indexer.models.base import VisionLanguageModel
from indexer.models.factory import build_model

__all__ = ["VisionLanguageModel", "build_model"]
