"""Qdrant adapter of the vector store port: local mode (a folder, brute force) or a server.

One named vector per space (cosine). A store is addressed by its *name*
(`collection_name(model_id, spaces)`), which is an alias onto a versioned collection
`<name>__v<N>`. Reindexing without downtime:

    new = store.create_versioned(2)          # empty collection, same spaces
    store.bound_to(new).upsert(...)          # fill it from the catalog
    store.swap_alias(store.name, new)        # atomic switch; searches follow the alias
    store.drop_collection(old)               # optional clean-up

A collection whose vectors have other dimensions than asked raises `VectorSpaceMismatch`;
transport failures (server down, timeouts, 5xx, local folder locked by another process)
raise `StoreUnavailable`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from indexer.errors import InvalidRequest, StoreUnavailable, VectorSpaceMismatch
from indexer.settings import VectorSettings
from indexer.stores.vectors import VectorFilter, VectorHit, VectorPoint, check_vector

log = logging.getLogger(__name__)

T = TypeVar("T")
_BATCH = 256
_PAYLOAD_INDEXES: dict[str, qm.PayloadSchemaType] = {
    "tenant": qm.PayloadSchemaType.KEYWORD,
    "kind": qm.PayloadSchemaType.KEYWORD,
    "media_id": qm.PayloadSchemaType.KEYWORD,
    "t_start": qm.PayloadSchemaType.FLOAT,
}


def _unavailable(exc: BaseException, where: str) -> StoreUnavailable:
    return StoreUnavailable(f"qdrant unavailable ({where}): {exc}", detail={"where": where})


@contextmanager
def _mapped(where: str) -> Iterator[None]:
    """Translate transport failures into StoreUnavailable; let the rest through."""
    try:
        yield
    except (ResponseHandlingException, httpx.TransportError, ConnectionError, TimeoutError) as exc:
        raise _unavailable(exc, where) from exc
    except UnexpectedResponse as exc:
        if exc.status_code is None or exc.status_code >= 500:
            raise _unavailable(exc, where) from exc
        raise
    except Exception as exc:  # grpc is optional: match its error by name
        if type(exc).__name__ in {"RpcError", "_InactiveRpcError", "AioRpcError"}:
            raise _unavailable(exc, where) from exc
        raise


def _condition(key: str, value: Any) -> qm.FieldCondition:
    if isinstance(value, (list, tuple, set)):
        return qm.FieldCondition(key=key, match=qm.MatchAny(any=list(value)))
    if isinstance(value, float):
        return qm.FieldCondition(key=key, range=qm.Range(gte=value, lte=value))
    return qm.FieldCondition(key=key, match=qm.MatchValue(value=value))


def to_qdrant_filter(flt: VectorFilter | None) -> qm.Filter | None:
    if flt is None:
        return None
    must: list[qm.Condition] = []
    if flt.tenant is not None:
        must.append(_condition("tenant", flt.tenant))
    if flt.kinds is not None:
        must.append(qm.FieldCondition(key="kind", match=qm.MatchAny(any=list(flt.kinds))))
    if flt.media_ids is not None:
        must.append(
            qm.FieldCondition(key="media_id", match=qm.MatchAny(any=list(flt.media_ids)))
        )
    for key, value in flt.extra.items():
        must.append(_condition(key, value))
    return qm.Filter(must=must) if must else None


class QdrantVectorStore:
    def __init__(
        self,
        name: str,
        spaces: dict[str, int],
        settings: VectorSettings,
        path: Path | None = None,
        *,
        timeout_s: int = 10,
    ) -> None:
        if not spaces:
            raise InvalidRequest("a vector store needs at least one space")
        self.name = name
        self.spaces = dict(spaces)
        self._settings = settings
        self._lock = threading.RLock()
        self._owns_client = True
        self._closed = False
        self.local = settings.qdrant_url is None
        if self.local:
            if path is None:
                raise InvalidRequest("qdrant local mode needs a path (or set qdrant_url)")
            Path(path).mkdir(parents=True, exist_ok=True)
            try:
                # our lock serialises access; the sqlite connection is shared across threads
                self._client = QdrantClient(path=str(path), force_disable_check_same_thread=True)
            except RuntimeError as exc:  # "already accessed by another instance"
                raise _unavailable(exc, f"local storage {path}") from exc
        else:
            self._client = QdrantClient(
                url=settings.qdrant_url,
                api_key=settings.qdrant_api_key,
                timeout=timeout_s,
                check_compatibility=False,
            )
        try:
            self.target = self._open_or_create()
        except BaseException:
            self._client.close()
            raise

    @classmethod
    def _sibling(cls, parent: QdrantVectorStore, target: str) -> QdrantVectorStore:
        self = cls.__new__(cls)
        self.name = parent.name
        self.spaces = dict(parent.spaces)
        self._settings = parent._settings
        self._lock = parent._lock
        self._owns_client = False
        self._closed = False
        self.local = parent.local
        self._client = parent._client
        self.target = target
        return self

    # ---------------------------------------------------------------- collections

    def _call(self, where: str, fn: Callable[[], T]) -> T:
        if self._closed:
            raise RuntimeError(f"vector store {self.name} is closed")
        with self._lock, _mapped(where):
            return fn()

    def _aliases(self) -> dict[str, str]:
        resp = self._client.get_aliases()
        return {a.alias_name: a.collection_name for a in resp.aliases}

    def _collections(self) -> set[str]:
        return {c.name for c in self._client.get_collections().collections}

    def _open_or_create(self) -> str:
        def run() -> str:
            aliases = self._aliases()
            if self.name in aliases:
                self._check_dims(self.name)
                return self.name
            if self.name in self._collections():  # a plain collection (made elsewhere)
                self._check_dims(self.name)
                return self.name
            first = self._create(self._versioned(1))
            self._client.update_collection_aliases(
                change_aliases_operations=[
                    qm.CreateAliasOperation(
                        create_alias=qm.CreateAlias(collection_name=first, alias_name=self.name)
                    )
                ]
            )
            log.info("qdrant: created %s with alias %s", first, self.name)
            return self.name

        return self._call("open collection", run)

    def _versioned(self, version: int) -> str:
        return f"{self.name}__v{version}"

    def _check_dims(self, collection: str) -> None:
        info = self._client.get_collection(collection)
        vectors = info.config.params.vectors
        stored: dict[str, int] = {}
        if isinstance(vectors, dict):
            stored = {k: int(v.size) for k, v in vectors.items()}
        elif vectors is not None:  # a single unnamed vector: not ours
            stored = {"": int(vectors.size)}
        if stored != self.spaces:
            raise VectorSpaceMismatch(
                f"qdrant collection {collection} holds vector spaces {stored}, asked for "
                f"{self.spaces}; refusing to mix vectors of different models "
                "(reindex into a new collection instead)",
                detail={"collection": collection, "stored": stored, "requested": self.spaces},
            )

    def _create(self, collection: str) -> str:
        if collection in self._collections():
            self._check_dims(collection)
            return collection
        cluster: dict[str, int] = {}
        if not self.local:  # a server or cluster: split and replicate as configured
            cluster = {"shard_number": self._settings.shard_number,
                       "replication_factor": self._settings.replication_factor}
        self._client.create_collection(
            collection_name=collection,
            vectors_config={
                s: qm.VectorParams(size=d, distance=qm.Distance.COSINE)
                for s, d in self.spaces.items()
            },
            hnsw_config=qm.HnswConfigDiff(
                m=self._settings.hnsw_m, ef_construct=self._settings.hnsw_ef_construction
            ),
            **cluster,  # type: ignore[arg-type]
        )
        if not self.local:  # local mode ignores payload indexes (and warns); skip quietly
            for field, schema in _PAYLOAD_INDEXES.items():
                self._client.create_payload_index(
                    collection_name=collection, field_name=field, field_schema=schema
                )
        return collection

    def create_versioned(self, version: int) -> str:
        """Create (or reopen, if it exists with the same spaces) `<name>__v<version>`."""
        return self._call("create collection", lambda: self._create(self._versioned(version)))

    def bound_to(self, collection: str) -> QdrantVectorStore:
        """A view of this store that reads and writes `collection` directly (for filling a
        new version before `swap_alias`). It shares the client; closing it is a no-op."""
        self._call("check collection", lambda: self._check_dims(collection))
        return QdrantVectorStore._sibling(self, collection)

    def swap_alias(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection` in one atomic alias update."""

        def run() -> None:
            self._check_dims(collection)
            ops: list[qm.CreateAliasOperation | qm.DeleteAliasOperation] = []
            if alias in self._aliases():
                ops.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias)))
            elif alias in self._collections():
                raise InvalidRequest(
                    f"{alias} is a collection, not an alias; cannot swap it in place"
                )
            ops.append(
                qm.CreateAliasOperation(
                    create_alias=qm.CreateAlias(collection_name=collection, alias_name=alias)
                )
            )
            self._client.update_collection_aliases(change_aliases_operations=ops)
            log.info("qdrant: alias %s -> %s", alias, collection)

        self._call("swap alias", run)

    def current_collection(self) -> str:
        """The collection the store's name resolves to now."""
        return self._call("aliases", lambda: self._aliases().get(self.name, self.name))

    def versions(self) -> list[str]:
        prefix = f"{self.name}__v"
        return self._call(
            "list collections",
            lambda: sorted(
                (c for c in self._collections() if c.startswith(prefix)),
                key=lambda c: int(c.removeprefix(prefix)) if c.removeprefix(prefix).isdigit()
                else -1,
            ),
        )

    def drop_collection(self, collection: str) -> None:
        def run() -> None:
            if collection in self._aliases().values():
                raise InvalidRequest(f"collection {collection} is still behind an alias")
            self._client.delete_collection(collection_name=collection)

        self._call("drop collection", run)

    # ------------------------------------------------------------------------ port

    def _vector(self, space: str, vec: np.ndarray, what: str) -> list[float]:
        dim = self.spaces.get(space)
        if dim is None:
            raise VectorSpaceMismatch(f"{what}: collection {self.name} has no space {space!r}")
        return [float(x) for x in check_vector(vec, dim, f"{what} ({space})")]

    def upsert(self, points: Sequence[VectorPoint]) -> None:
        structs = [
            qm.PointStruct(
                id=p.id,
                vector={s: self._vector(s, v, f"point {p.id}") for s, v in p.vectors.items()},
                payload=dict(p.payload),
            )
            for p in points
        ]
        for i in range(0, len(structs), _BATCH):
            self._upsert_chunk(structs[i : i + _BATCH])

    def _upsert_chunk(self, chunk: list[qm.PointStruct]) -> None:
        self._call(
            "upsert",
            lambda: self._client.upsert(collection_name=self.target, points=chunk, wait=True),
        )

    def search(
        self, space: str, vector: np.ndarray, k: int, flt: VectorFilter | None = None
    ) -> list[VectorHit]:
        query = self._vector(space, vector, f"query on space {space}")
        if k <= 0:
            return []
        # local mode is exact (brute force) and warns about HNSW parameters: send none
        params = None if self.local else qm.SearchParams(
            hnsw_ef=max(self._settings.hnsw_ef_search, k)
        )
        resp = self._call(
            "search",
            lambda: self._client.query_points(
                collection_name=self.target,
                query=query,
                using=space,
                limit=k,
                query_filter=to_qdrant_filter(flt),
                search_params=params,
                with_payload=True,
            ),
        )
        return [
            VectorHit(id=str(p.id), score=float(p.score), payload=dict(p.payload or {}))
            for p in resp.points
        ]

    def delete_media(self, media_id: str) -> int:
        flt = qm.Filter(must=[_condition("media_id", media_id)])

        def run() -> int:
            n = self._client.count(self.target, count_filter=flt, exact=True).count
            if n:
                self._client.delete(
                    collection_name=self.target,
                    points_selector=qm.FilterSelector(filter=flt),
                    wait=True,
                )
            return int(n)

        return self._call("delete", run)

    def count(self) -> int:
        return self._call("count", lambda: int(self._client.count(self.target, exact=True).count))

    def ids(self) -> set[str]:
        def run() -> set[str]:
            out: set[str] = set()
            offset: Any = None
            while True:
                records, offset = self._client.scroll(
                    collection_name=self.target,
                    limit=1024,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                )
                out.update(str(r.id) for r in records)
                if offset is None:
                    return out

        return self._call("scroll", run)

    def flush(self) -> None:
        """Qdrant persists every acknowledged write (wait=True); nothing to do."""

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_client:
                self._client.close()
