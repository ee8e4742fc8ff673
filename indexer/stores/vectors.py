"""The vector store port. Adapters: FAISS (embedded default) and Qdrant (local or server).

A point is one view. Its id is deterministic (`point_id(media_id, view_id)`), so indexing
the same view again overwrites instead of duplicating. A collection is named by the model
id and its space dimensions (`collection_name`), so vectors of different models never mix.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

_NAMESPACE = uuid.UUID("5b0c3f58-3a0e-4d8e-9a53-6f1f1e0c2a11")


def point_id(media_id: str, view_id: str) -> str:
    """Same media and view -> same id, across processes and machines."""
    return str(uuid.uuid5(_NAMESPACE, f"{media_id}/{view_id}"))


def check_vector(vec: np.ndarray, dim: int, what: str) -> np.ndarray:
    """A flat float32 vector of the space's dimension with finite values, or a typed error."""
    from indexer.errors import InvalidRequest, VectorSpaceMismatch

    arr = np.asarray(vec, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise VectorSpaceMismatch(
            f"{what}: vector has {arr.shape[0]} dimensions, the space holds {dim}",
            detail={"expected": dim, "got": int(arr.shape[0])},
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidRequest(f"{what}: vector contains NaN or infinity")
    return arr


def collection_name(model_id: str, spaces: dict[str, int]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")
    dims = "-".join(f"{k}{v}" for k, v in sorted(spaces.items()))
    return f"glimpse_{slug}_{dims}"


@dataclass
class VectorPoint:
    id: str
    vectors: dict[str, np.ndarray]  # space -> float32[d], L2-normalised
    payload: dict[str, Any]  # media_id, view_id, tenant, kind, t_start, t_end, ...


@dataclass
class VectorFilter:
    """Equality filters on payload fields; `media_ids` restricts to a set of media."""

    tenant: str | None = None
    kinds: list[str] | None = None
    media_ids: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def matches(self, payload: dict[str, Any]) -> bool:
        if self.tenant is not None and payload.get("tenant") != self.tenant:
            return False
        if self.kinds is not None and payload.get("kind") not in self.kinds:
            return False
        if self.media_ids is not None and payload.get("media_id") not in self.media_ids:
            return False
        return all(payload.get(k) == v for k, v in self.extra.items())


@dataclass
class VectorHit:
    id: str
    score: float  # cosine similarity
    payload: dict[str, Any]


class VectorStore(Protocol):
    name: str
    spaces: dict[str, int]

    def upsert(self, points: Sequence[VectorPoint]) -> None: ...

    def search(
        self, space: str, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]: ...

    def delete_media(self, media_id: str) -> int:
        """Remove every point of a media; returns how many were removed."""
        ...

    def count(self) -> int: ...

    def ids(self) -> set[str]: ...

    def flush(self) -> None:
        """Persist to disk where the adapter keeps files."""
        ...

    def close(self) -> None: ...
