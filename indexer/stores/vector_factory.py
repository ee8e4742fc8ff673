"""Build the configured vector store for a model's spaces."""

from __future__ import annotations

import logging

from indexer.settings import Settings
from indexer.stores.vectors import VectorStore, collection_name

log = logging.getLogger(__name__)


def build_vector_store(settings: Settings, model_id: str, spaces: dict[str, int]) -> VectorStore:
    """FAISS files live under `vector_dir/faiss/<name>/`; Qdrant local mode under
    `vector_dir/qdrant/`; Qdrant server mode when `vectors.qdrant_url` is set. The
    collection name carries the model id and dimensions, so models never share one."""
    name = collection_name(model_id, spaces)
    backend = settings.vectors.backend
    log.info("vector store: %s backend, collection %s", backend, name)
    if backend == "faiss":
        from indexer.stores.faiss_store import FaissVectorStore

        return FaissVectorStore(settings.vector_dir / "faiss", name, spaces, settings.vectors)
    if backend == "qdrant":
        from indexer.stores.qdrant_store import QdrantVectorStore

        path = None if settings.vectors.qdrant_url else settings.vector_dir / "qdrant"
        return QdrantVectorStore(name, spaces, settings.vectors, path)
    raise ValueError(f"unknown vector backend {backend!r}")
