"""A local embedder paired with a remote generator: vectors (indexing, queries) come from
the cpu or glm backend in this process; descriptions on demand, reranking scores, answers
and extraction come from an OpenAI-compatible server (vLLM/SGLang serving GLM-4.5V)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from indexer.domain import Answer, Description, Turn, ViewEncoding, ViewInput
from indexer.models.base import VisionLanguageModel, relevance_from_similarity


class CompositeModel:
    def __init__(self, embedder: VisionLanguageModel, generator: Any) -> None:
        self.embedder = embedder
        self.generator = generator
        # the vector space is the embedder's: collections are named by it
        self.model_id = embedder.model_id
        self.spaces = dict(embedder.spaces)
        self.generative = bool(getattr(generator, "generative", True))

    def load(self) -> None:
        self.embedder.load()
        self.generator.load()

    def encode_views(self, views: Sequence[ViewInput]) -> list[ViewEncoding]:
        return self.embedder.encode_views(views)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed_texts(texts)

    def embed_query_images(self, views: Sequence[ViewInput]) -> list[dict[str, np.ndarray]]:
        return self.embedder.embed_query_images(views)

    def similarity_relevance(self, space: str, sims: Sequence[float]) -> list[float]:
        """The embedder owns its spaces, so it owns their calibration."""
        return relevance_from_similarity(self.embedder, space, list(sims))

    def describe(self, view: ViewInput) -> Description:
        return self.generator.describe(view)  # type: ignore[no-any-return]

    def score(self, query: str, view: ViewInput, description: Description | None) -> float:
        return float(self.generator.score(query, view, description))

    def answer(self, question: str, views: Sequence[ViewInput],
               descriptions: Sequence[Description], history: Sequence[Turn] = ()) -> Answer:
        return self.generator.answer(question, views, descriptions, history)  # type: ignore[no-any-return]

    def answer_stream(self, question: str, views: Sequence[ViewInput],
                      descriptions: Sequence[Description],
                      history: Sequence[Turn] = ()) -> Iterator[dict[str, Any]]:
        """Token deltas from the generator, then `{"type": "done", "answer": Answer}`."""
        yield from self.generator.answer_stream(question, views, descriptions, history)

    def answer_video(self, question: str, frames: Sequence[tuple[float, Any]],
                     history: Sequence[Turn] = ()) -> Answer:
        """Keyframes with timestamps to the generator's video input."""
        return self.generator.answer_video(question, frames, history)  # type: ignore[no-any-return]

    def extract(self, view: ViewInput, kind: str) -> dict[str, Any]:
        return self.generator.extract(view, kind)  # type: ignore[no-any-return]
