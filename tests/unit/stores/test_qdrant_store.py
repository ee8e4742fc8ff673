"""Qdrant-only behaviour: versioned collections behind an alias, unavailable server."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import InvalidRequest, StoreUnavailable, VectorSpaceMismatch
from indexer.settings import VectorSettings
from indexer.stores.qdrant_store import QdrantVectorStore
from indexer.stores.vectors import VectorPoint, point_id

SETTINGS = VectorSettings(backend="qdrant")
SPACES = {"text": 8}


def _point(media: str, vec: np.ndarray) -> VectorPoint:
    return VectorPoint(point_id(media, "v0"), {"text": vec}, {"media_id": media, "tenant": "t"})


def test_reindex_into_new_version_and_swap(tmp_path: Path) -> None:
    store = QdrantVectorStore("glimpse_x", SPACES, SETTINGS, tmp_path)
    try:
        assert store.current_collection() == "glimpse_x__v1"
        old = np.eye(8, dtype=np.float32)
        store.upsert([_point(f"m{i}", old[i]) for i in range(8)])

        new = store.create_versioned(2)
        assert new == "glimpse_x__v2"
        assert store.versions() == ["glimpse_x__v1", "glimpse_x__v2"]
        filler = store.bound_to(new)
        filler.upsert([_point(f"n{i}", old[i]) for i in range(3)])
        assert filler.count() == 3
        assert store.count() == 8  # searches still served by v1 while v2 fills

        store.swap_alias(store.name, new)
        assert store.current_collection() == new
        assert store.count() == 3
        assert store.search("text", old[0], 1)[0].payload["media_id"] == "n0"

        with pytest.raises(InvalidRequest):
            store.drop_collection(new)  # still behind the alias
        store.drop_collection("glimpse_x__v1")
        assert store.versions() == [new]
    finally:
        store.close()
    again = QdrantVectorStore("glimpse_x", SPACES, SETTINGS, tmp_path)
    try:
        assert again.current_collection() == "glimpse_x__v2" and again.count() == 3
    finally:
        again.close()


def test_swap_to_collection_of_other_dims_refused(tmp_path: Path) -> None:
    store = QdrantVectorStore("a", SPACES, SETTINGS, tmp_path)
    other = QdrantVectorStore._sibling(store, "a")
    other.spaces = {"text": 16}
    wrong = other.create_versioned(7)
    try:
        with pytest.raises(VectorSpaceMismatch):
            store.swap_alias("a", wrong)
        with pytest.raises(VectorSpaceMismatch):
            store.bound_to(wrong)
        assert store.current_collection() == "a__v1"
    finally:
        store.close()


def test_folder_in_use_is_unavailable(tmp_path: Path) -> None:
    first = QdrantVectorStore("a", SPACES, SETTINGS, tmp_path)
    try:
        with pytest.raises(StoreUnavailable):
            QdrantVectorStore("a", SPACES, SETTINGS, tmp_path)
    finally:
        first.close()


def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = VectorSettings(backend="qdrant", qdrant_url=f"http://127.0.0.1:{port}")
    with pytest.raises(StoreUnavailable) as err:
        QdrantVectorStore("a", SPACES, settings, None, timeout_s=2)
    assert err.value.status == 503
