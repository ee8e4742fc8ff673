"""The application core: settings, catalog, blobs, model, vectors, search — built once per
process and shared by the API, the workers and the CLI. Heavy parts are built lazily."""

from __future__ import annotations

import logging
import threading
from functools import cached_property

from indexer.models import VisionLanguageModel, build_model
from indexer.settings import Settings
from indexer.stores.blobs import BlobStore
from indexer.stores.catalog import Catalog
from indexer.stores.vectors import VectorStore

log = logging.getLogger(__name__)


class Glimpse:
    def __init__(self, settings: Settings, *, model: VisionLanguageModel | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._model = model
        self._owns_model = model is None  # a model handed in belongs to the caller
        self._lock = threading.Lock()

    @cached_property
    def catalog(self) -> Catalog:
        c = Catalog(self.settings.catalog_url, pool_size=self.settings.catalog.pool_size,
                    echo=self.settings.catalog.echo)
        return c

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings.blob_dir)

    @property
    def model(self) -> VisionLanguageModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = build_model(self.settings)
        return self._model

    @property
    def stored_spaces(self) -> dict[str, int]:
        """The model's spaces plus `caption`: text of caption+OCR, embedded like a query."""
        spaces = dict(self.model.spaces)
        spaces.setdefault("caption", spaces["semantic"])
        return spaces

    @cached_property
    def vectors(self) -> VectorStore:
        from indexer.stores.vector_factory import build_vector_store

        return build_vector_store(self.settings, self.model.model_id, self.stored_spaces)

    @cached_property
    def search(self):  # type: ignore[no-untyped-def]
        from indexer.search import SearchService

        return SearchService(self)

    @cached_property
    def conversations(self):  # type: ignore[no-untyped-def]
        from indexer.sessions import ConversationService

        return ConversationService(self)

    def view_image(self, view):  # type: ignore[no-untyped-def]
        """The pixels of a stored view: its own blob (frames, pages) or its media's."""
        from indexer.media.images import load_rgb, load_view_rgb

        if view.image_sha256:
            return load_rgb(self.blobs.open_path(view.image_sha256))
        media = self.catalog.get_media(view.media_id)
        return load_view_rgb(self.blobs.open_path(media.sha256), self.settings.limits)

    def migrate(self) -> None:
        self.catalog.migrate()

    def close(self) -> None:
        if "vectors" in self.__dict__:
            try:
                self.vectors.flush()
                self.vectors.close()
            except Exception:  # noqa: BLE001
                log.warning("closing the vector store failed", exc_info=True)
        if "catalog" in self.__dict__:
            self.catalog.close()
        close = getattr(self._model, "close", None)
        if self._owns_model and callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001
                log.warning("closing the model failed", exc_info=True)
