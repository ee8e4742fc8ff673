"""A CLIP-family embedder paired with a describe backend (cpu or glm).

Vectors (indexing, text and image queries, video frames) come from the CLIP checkpoint: one
`semantic` space where texts and images meet, and image->image search runs in the same space.
Descriptions (OCR, detected people and faces, colours; glm's generated captions) come from the
describe backend; concept tags come from CLIP's zero-shot scores (tags.py) and replace the
describe backend's classifier tags. With the cpu describer the evidence caption is rebuilt from
those tags, so caption, tags and lexical search agree. Answers and extraction stay with the
describe backend; reranking uses CLIP's calibrated similarity where the describer is not
generative, the generator's own score (it reads the pixels) where it is.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.domain import Answer, Description, Turn, ViewEncoding, ViewInput
from indexer.models.base import VisionLanguageModel
from indexer.models.clip.embedder import ClipEmbedder
from indexer.models.clip.tags import ImageTags, ZeroShotTagger, z_relevance

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+")
# image->image cosine -> relevance: sigmoid(IMAGE_SLOPE * (cos - IMAGE_MID)). CLIP-family image
# embeddings of near-duplicates sit above ~0.9 and of one concept around 0.7-0.8; chosen from
# those published magnitudes, not fitted to real weights here
IMAGE_MID = 0.72
IMAGE_SLOPE = 12.0
TAG_SOURCES = ("classifier", "hierarchy")


def pack_vector(v: np.ndarray) -> str:
    """float16 base64 (1 KiB for 512-d): the view's CLIP vector kept in its description so
    reranking needs neither its pixels nor a vector-store round trip."""
    return base64.b64encode(np.asarray(v, np.float16).tobytes()).decode("ascii")


def unpack_vector(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), np.float16).astype(np.float32)


class ClipModel:
    def __init__(self, embedder: ClipEmbedder, describer: VisionLanguageModel,
                 cache_dir: Path | None = None) -> None:
        self.embedder = embedder
        self.describer = describer
        self.generator = describer if describer.generative else None
        self.tagger = ZeroShotTagger(embedder, cache_dir)
        self.generative = bool(describer.generative)
        # the vector space is the checkpoint's: collections are named by it (read from its
        # config and a fingerprint of its weights, without loading them)
        self.model_id: str = embedder.model_id
        self.spaces: dict[str, int] = embedder.spaces

    def load(self) -> None:
        self.embedder.load()
        self.describer.load()
        _ = self.tagger.label_embeddings

    def close(self) -> None:
        close = getattr(self.describer, "close", None)
        if callable(close):
            close()

    # ------------------------------------------------------------------ indexing
    def encode_views(self, views: Sequence[ViewInput]) -> list[ViewEncoding]:
        if not views:
            return []
        vecs = self.embedder.embed_images([v.image for v in views])
        analysed = self.tagger.analyse(vecs)
        descs = [e.description for e in self.describer.encode_views(views)]
        return [ViewEncoding(self._retag(d, a, vecs[i]), {"semantic": vecs[i]})
                for i, (d, a) in enumerate(zip(descs, analysed, strict=True))]

    def reencode(self, views: Sequence[ViewInput],
                 descriptions: Sequence[Description]) -> list[ViewEncoding]:
        """Vectors of stored views and their stored descriptions re-tagged in this space, for
        reindexing after a model switch: OCR, objects, colours and the rest of a description
        are kept, and the describe backend does not run again (OCR dominates its cost)."""
        if not views:
            return []
        vecs = self.embedder.embed_images([v.image for v in views])
        return [ViewEncoding(self._retag(d, a, vecs[i]), {"semantic": vecs[i]})
                for i, (d, a) in enumerate(zip(descriptions, self.tagger.analyse(vecs),
                                               strict=True))]

    def _retag(self, d: Description, a: ImageTags, vec: np.ndarray) -> Description:
        kept = [t for t in d.tags if t.source not in TAG_SOURCES]
        tags = a.tags + kept
        caption = d.caption
        if not self.generative:  # the cpu caption is assembled from tags: use CLIP's
            from indexer.models.cpu.caption import build_caption

            caption = build_caption(tags, d.objects, d.ocr, d.colors)
        # the cpu describer's ImageNet top classes stay: its own score reads them, so going
        # back to the cpu embedder needs a reindex only, not a re-description
        extra = dict(d.extra)
        extra["tagger"] = self.model_id
        extra["clip"] = {"model": self.model_id, "vec": pack_vector(vec),
                         "mu": round(a.mu, 5), "sd": round(a.sd, 5)}
        return Description(caption=caption, tags=tags, ocr=d.ocr, objects=d.objects,
                           colors=d.colors, extra=extra)

    def describe(self, view: ViewInput) -> Description:
        return self.encode_views([view])[0].description

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed_texts(texts)

    def embed_query_images(self, views: Sequence[ViewInput]) -> list[dict[str, np.ndarray]]:
        vecs = self.embedder.embed_images([v.image for v in views])
        return [{"semantic": vecs[i]} for i in range(len(views))]

    # ------------------------------------------------------------------ relevance
    def similarity_relevance(self, space: str, sims: Sequence[float]) -> list[float]:
        """Calibrated relevance of image->image cosines in this model's space."""
        x = np.asarray(list(sims), np.float64)
        return [float(v) for v in 1.0 / (1.0 + np.exp(-IMAGE_SLOPE * (x - IMAGE_MID)))]

    def _evidence(self, view: ViewInput, d: Description) -> tuple[np.ndarray, float, float]:
        clip = d.extra.get("clip") if isinstance(d.extra, dict) else None
        if isinstance(clip, dict) and clip.get("model") == self.model_id and clip.get("vec"):
            return unpack_vector(clip["vec"]), float(clip["mu"]), float(clip["sd"])
        # a description from before a model switch: the view's own pixels
        vec = self.embedder.embed_images([view.image])[0]
        a = self.tagger.analyse(vec[None])[0]
        return vec, a.mu, a.sd

    def score(self, query: str, view: ViewInput, description: Description | None) -> float:
        """Relevance in [0, 1]: the query's CLIP cosine as a z-score against the view's
        cosines to the tag vocabulary, noisy-or'd with OCR words that spell the query."""
        if self.generator is not None:  # the generative model reads the pixels itself
            return float(self.generator.score(query, view, description))
        d = description or self.describe(view)
        clip = d.extra.get("clip") if isinstance(d.extra, dict) else None
        stale = not (isinstance(clip, dict) and clip.get("model") == self.model_id)
        if stale and view.image.width * view.image.height <= 1:
            # no vector of this space and no pixels (search passes none to evidence models)
            return float(self.describer.score(query, view, d))
        vec, mu, sd = self._evidence(view, d)
        q = self.embedder.embed_texts([query])[0]
        rel = z_relevance(float(np.dot(q, vec)), mu, sd)
        words = [w for w in _WORD.findall(query.lower()) if len(w) >= 3]
        ocr_text = d.ocr_text.lower()
        ocr = (sum(w in ocr_text for w in words) / len(words)) if words and ocr_text else 0.0
        return float(np.clip(1.0 - (1.0 - rel) * (1.0 - 0.9 * ocr), 0.0, 1.0))

    # ------------------------------------------------------------------ the describer's
    def answer(self, question: str, views: Sequence[ViewInput],
               descriptions: Sequence[Description], history: Sequence[Turn] = ()) -> Answer:
        return self.describer.answer(question, views, descriptions, history)

    def extract(self, view: ViewInput, kind: str) -> dict[str, Any]:
        return self.describer.extract(view, kind)

    def __getattr__(self, name: str) -> Any:
        # answer_stream / answer_video where the describer has them, so callers that probe
        # with hasattr see the describer's capabilities
        if name in ("answer_stream", "answer_video"):
            describer = self.__dict__.get("describer")
            if describer is not None and hasattr(describer, name):
                return getattr(describer, name)
        raise AttributeError(name)

