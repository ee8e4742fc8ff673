"""Zero-shot concept tags from a CLIP-family model (Radford et al. 2021, section 3.1.4).

Vocabulary: the 1000 ImageNet classes of the cpu backend's WordNet data plus the COCO labels
ImageNet lacks ("person", "car", "dining table"). Each label's text vector is the mean of its
prompt-ensemble vectors (OpenAI's seven best ImageNet templates and "a photo of a {}"), built
once per checkpoint and cached on disk. An image's tag probabilities are the softmax of its
cosines to every label at the model's own logit scale: the zero-shot classifier CLIP reports
its ImageNet accuracy with. General tags ("cat", "animal") are the probability mass under each
WordNet hypernym, the same aggregation the cpu backend uses, so they are calibrated the same way.

The same cosines give each image its similarity statistics against the vocabulary (mean and
spread), which turn a query's cosine into a checkpoint-independent z-score for relevance.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.domain import Tag
from indexer.models.base import l2_normalize
from indexer.models.cpu import conse

log = logging.getLogger(__name__)

TEMPLATES = (
    "a photo of a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)
COCO_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
TOP_TAGS = 5
MIN_TAG_P = 0.01
# relevance = sigmoid(Z_SLOPE * (z - Z_MID)), z = the query's cosine in standard deviations
# above the image's mean cosine to the vocabulary. Z_MID 2.5 puts 0.5 where a label beats
# ~99 % of a 1000-class vocabulary; not fitted to real weights here (none can be downloaded)
Z_MID = 2.5
Z_SLOPE = 1.5


def vocabulary() -> tuple[list[str], int]:
    """(labels, number of ImageNet classes first): ImageNet plain names, then COCO extras."""
    data = conse.class_data()
    names = [conse.class_prompts(i, "name", data) for i in range(len(data.names))]
    have = {n.lower() for n in names}
    return names + [c for c in COCO_LABELS if c not in have], len(names)


@dataclass
class ImageTags:
    tags: list[Tag]
    probs: np.ndarray  # float32[len(vocabulary)]
    mu: float  # mean cosine to the vocabulary
    sd: float  # its standard deviation


def z_relevance(cos: float, mu: float, sd: float) -> float:
    z = (cos - mu) / max(sd, 1e-4)
    return float(1.0 / (1.0 + np.exp(-Z_SLOPE * (z - Z_MID))))


class ZeroShotTagger:
    def __init__(self, embedder: Any, cache_dir: Path | None = None) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.labels, self.n_imagenet = vocabulary()
        self._emb: np.ndarray | None = None

    def _cache_path(self) -> Path:
        from indexer.models.cpu.onnx_cache import default_cache_dir

        h = hashlib.sha256(self.embedder.model_id.encode())
        h.update("\n".join(self.labels).encode())
        h.update("\n".join(TEMPLATES).encode())
        return (self.cache_dir or default_cache_dir()) / f"clip-tags-{h.hexdigest()[:16]}.npy"

    @property
    def label_embeddings(self) -> np.ndarray:
        """float32[len(labels), d]: one prompt-ensemble vector per label (cached on disk)."""
        if self._emb is None:
            self._emb = self._load_or_build()
        return self._emb

    def _load_or_build(self) -> np.ndarray:
        path = self._cache_path()
        shape = (len(self.labels), self.embedder.dim)
        try:
            if path.exists():
                emb = np.load(path)
                if emb.shape == shape:
                    return emb.astype(np.float32)
        except Exception:  # a broken cache is only a cache
            log.debug("clip tag cache unreadable", exc_info=True)
        acc = np.zeros(shape, np.float32)
        for tpl in TEMPLATES:
            acc += self.embedder.embed_texts([tpl.format(n) for n in self.labels])
        emb = l2_normalize(acc)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, emb)
            os.replace(tmp, path)
        except Exception:
            log.debug("clip tag cache not written", exc_info=True)
        return emb

    def analyse(self, vecs: np.ndarray) -> list[ImageTags]:
        """Tags, vocabulary probabilities and similarity statistics for image vectors."""
        if len(vecs) == 0:
            return []
        cos = np.asarray(vecs, np.float32) @ self.label_embeddings.T
        logits = cos * float(self.embedder.logit_scale)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return [ImageTags(self._tags(probs[i]), probs[i].astype(np.float32),
                          float(cos[i].mean()), float(cos[i].std()))
                for i in range(len(vecs))]

    def _tags(self, p: np.ndarray) -> list[Tag]:
        top = np.argsort(-p)[:TOP_TAGS]
        tags = [Tag(self.labels[k], round(float(p[k]), 4), "classifier") for k in top
                if p[k] >= MIN_TAG_P]
        # hypernyms aggregate the ImageNet part only (the COCO labels have no WordNet chain)
        tags += [Tag(name, round(x, 4), "hierarchy")
                 for name, x in conse.hierarchy_tags(p[: self.n_imagenet])]
        return tags
