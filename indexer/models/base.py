"""The model protocol every backend implements.

Vector spaces: a backend declares named spaces and their dimensions in `spaces`.
`semantic` is the shared text-image space every backend must have: `embed_texts` and the
`semantic` vector of `encode_views` live there, so text->image search is one dot product.
A backend may add more (the cpu backend adds `visual`, its native image features, for
image->image search). `model_id` names the vector spaces: a collection built by one
model id is never mixed with another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexer.domain import Answer, Description, Turn, ViewEncoding, ViewInput


@runtime_checkable
class VisionLanguageModel(Protocol):
    model_id: str
    spaces: dict[str, int]
    # True: score/answer/extract run a generative model on the view's pixels. False (the cpu
    # backend): they reason over the stored description only, extraction is the document
    # pipeline, and callers need not decode pixels for them.
    generative: bool

    def load(self) -> None:
        """Load weights and warm up once. Idempotent; called lazily by the other methods."""

    def encode_views(self, views: Sequence[ViewInput]) -> list[ViewEncoding]:
        """Describe and embed a batch of views (one shared forward pass where possible)."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """float32[n, spaces['semantic']], L2-normalised."""
        ...

    def embed_query_images(self, views: Sequence[ViewInput]) -> list[dict[str, np.ndarray]]:
        """Vectors of query images in every space, without the cost of a full description."""
        ...

    def describe(self, view: ViewInput) -> Description: ...

    def score(self, query: str, view: ViewInput, description: Description | None) -> float:
        """Relevance of a view to a query in [0, 1], for reranking."""
        ...

    def answer(
        self,
        question: str,
        views: Sequence[ViewInput],
        descriptions: Sequence[Description],
        history: Sequence[Turn] = (),
    ) -> Answer: ...

    def extract(self, view: ViewInput, kind: str) -> dict[str, Any]: ...


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return x / np.maximum(n, 1e-12)


def relevance_from_similarity(model: Any, space: str, sims: list[float]) -> list[float]:
    """A backend's calibrated 0..1 relevance for cosines in one of its spaces; backends
    without a calibration get a plain clip of the cosine."""
    calib = getattr(model, "similarity_relevance", None)
    if callable(calib):
        return [float(x) for x in calib(space, sims)]
    return [min(1.0, max(0.0, float(s))) for s in sims]
