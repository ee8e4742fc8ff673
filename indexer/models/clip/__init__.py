"""The `clip` embed backend: any transformers CLIP-family checkpoint as Glimpse's vector space,
with zero-shot tags, beside a describe backend (cpu or glm). See embedder.py, tags.py, model.py."""

from indexer.models.clip.embedder import ClipEmbedder
from indexer.models.clip.model import ClipModel

__all__ = ["ClipEmbedder", "ClipModel"]
