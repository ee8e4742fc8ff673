"""Rebuild the vector index from the catalog, then switch to it atomically.

Postgres (or SQLite) is the source of truth: every view row names its pixels — the media
blob for an image, its own stored image for a video frame or document page — and its
description. Reindexing re-encodes those pixels through the current model (visual and
semantic vectors) and embeds the stored caption text (caption vectors), into a *new*
collection; searches keep using the old one until the switch:

* Qdrant: a new versioned collection `<name>__v<N+1>`, then one atomic alias update; the old
  version is dropped afterwards.
* FAISS: a new store built in a scratch folder, its generation moved into the live folder
  and `CURRENT` replaced atomically (the store's own crash-safe switch). A running server
  keeps its loaded index until restarted: stop it (or use Qdrant) before reindexing.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from indexer.context import Glimpse
from indexer.domain import Description, ViewEncoding, ViewInput
from indexer.errors import GlimpseError
from indexer.media.images import load_rgb, load_view_rgb
from indexer.pipeline.runner import caption_text
from indexer.stores.catalog import ViewRecord
from indexer.stores.vectors import VectorPoint, VectorStore, collection_name, point_id

log = logging.getLogger(__name__)


def reindex(core: Glimpse, *, batch: int | None = None) -> dict[str, Any]:
    """Build a fresh collection from the catalog and swap it in. Returns counts and time."""
    t0 = time.perf_counter()
    bs = max(1, batch or core.settings.model.batch_size)
    backend = core.settings.vectors.backend
    if backend == "qdrant":
        out = _reindex_qdrant(core, bs)
    elif backend == "faiss":
        out = _reindex_faiss(core, bs)
    else:
        raise GlimpseError(f"unknown vector backend {backend!r}")
    dt = time.perf_counter() - t0
    out.update(seconds=round(dt, 2), views_per_s=round(out["points"] / dt, 2) if dt else None)
    log.info("reindex: %s", out)
    return out


def _reindex_qdrant(core: Glimpse, bs: int) -> dict[str, Any]:
    from indexer.stores.qdrant_store import QdrantVectorStore

    store = core.vectors
    assert isinstance(store, QdrantVectorStore)
    previous = store.current_collection()
    prefix = f"{store.name}__v"
    numbers = [int(c.removeprefix(prefix)) for c in store.versions()
               if c.removeprefix(prefix).isdigit()]
    new = f"{prefix}{max(numbers, default=0) + 1}"
    new = store.create_versioned(int(new.removeprefix(prefix)))
    target = store.bound_to(new)
    filled = _fill(core, target, bs)
    store.swap_alias(store.name, new)
    dropped = None
    if previous not in (new, store.name):
        store.drop_collection(previous)
        dropped = previous
    return {"backend": "qdrant", "alias": store.name, "collection": new,
            "previous": previous, "dropped": dropped, **filled, "points": target.count()}


def _reindex_faiss(core: Glimpse, bs: int) -> dict[str, Any]:
    from indexer.stores.faiss_store import FaissVectorStore

    name = collection_name(core.model.model_id, core.stored_spaces)
    root = core.settings.vector_dir / "faiss"
    scratch = root / f".reindex-{os.getpid()}-{int(time.time())}"
    store = FaissVectorStore(scratch, name, core.stored_spaces, core.settings.vectors)
    try:
        filled = _fill(core, store, bs)
        points = store.count()
        store.close()  # writes its generation
        gen = _switch_faiss(scratch / name, root / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"backend": "faiss", "collection": name, "generation": gen, **filled,
            "points": points}


def _switch_faiss(built: Path, live: Path) -> str:
    """Move the built generation into the live folder and point CURRENT at it."""
    src = built / (built / "CURRENT").read_text().strip()
    live.mkdir(parents=True, exist_ok=True)
    cur = live / "CURRENT"
    n = int(cur.read_text().strip().removeprefix("gen-")) if cur.exists() else 0
    final = live / f"gen-{n + 1:06d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(src, final)
    tmp = live / f".CURRENT.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(final.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, cur)
    for old in live.iterdir():
        if old.is_dir() and old.name.startswith("gen-") and old.name != final.name:
            shutil.rmtree(old, ignore_errors=True)
    return final.name


def _fill(core: Glimpse, dest: VectorStore, bs: int) -> dict[str, Any]:
    views = skipped = described = 0
    errors: list[str] = []
    # a clip embedder (alone or under the openai composite) re-tags the stored descriptions
    # instead of describing every view again
    reencode = getattr(core.model, "reencode", None) or getattr(
        getattr(core.model, "embedder", None), "reencode", None)
    for chunk in _chunks(core, bs):
        inputs: list[ViewInput] = []
        recs: list[ViewRecord] = []
        kinds: dict[str, str] = {}
        media = core.catalog.media_by_ids(list({r.media_id for r in chunk}))
        for rec in chunk:
            m = media.get(rec.media_id)
            sha = rec.image_sha256 or (m.sha256 if m is not None and rec.kind == "image"
                                       else None)
            if m is None or sha is None:
                skipped += 1
                continue
            try:
                img = (load_rgb(core.blobs.open_path(sha), core.settings.limits)
                       if rec.image_sha256 else
                       load_view_rgb(core.blobs.open_path(sha), core.settings.limits))
            except GlimpseError as e:
                skipped += 1
                if len(errors) < 20:
                    errors.append(f"{rec.id}: {e.message}")
                continue
            inputs.append(ViewInput(view_id=rec.id, image=img, kind=rec.kind,  # type: ignore[arg-type]
                                    t_start=rec.t_start, t_end=rec.t_end, page=rec.page))
            recs.append(rec)
            kinds[rec.media_id] = m.kind
        if not inputs:
            continue
        if reencode is not None:  # the model re-tags stored descriptions in its own space
            encs = reencode(inputs, [r.description for r in recs])
            write_descriptions(core, [(r.id, e.description) for r, e in zip(recs, encs,
                                                                            strict=True)])
            described += len(encs)
        else:
            encs = core.model.encode_views(inputs)
        # caption vectors from the catalog's description: what lexical search also reads
        texts = [caption_text(ViewEncoding(e.description if reencode is not None
                                           else r.description, {}))
                 for r, e in zip(recs, encs, strict=True)]
        caps = core.model.embed_texts(texts)
        points = []
        for rec, enc, cap in zip(recs, encs, caps, strict=True):
            vectors = {k: np.asarray(x, dtype=np.float32) for k, x in enc.vectors.items()}
            vectors["caption"] = np.asarray(cap, dtype=np.float32)
            points.append(VectorPoint(
                id=point_id(rec.media_id, rec.id), vectors=vectors,
                payload={"media_id": rec.media_id, "view_id": rec.id, "tenant": rec.tenant,
                         "kind": kinds[rec.media_id], "view_kind": rec.kind,
                         "t_start": rec.t_start, "t_end": rec.t_end},
            ))
        dest.upsert(points)
        views += len(points)
    dest.flush()
    out: dict[str, Any] = {"views": views, "skipped": skipped, "errors": errors}
    if reencode is not None:
        out["descriptions_retagged"] = described
    return out


def write_descriptions(core: Glimpse, items: list[tuple[str, Description]]) -> None:
    """Store re-tagged descriptions of existing views (caption, search text, full-text row)
    and mark their media changed, so session caches read them again."""
    from sqlalchemy import update

    from indexer.stores.catalog import MediaRow, ViewRow, build_search_text, utcnow

    if not items:
        return
    cat = core.catalog
    with cat.session() as s:
        rows = {r.id: r for r in s.scalars(
            select(ViewRow).where(ViewRow.id.in_([vid for vid, _ in items])))}
        fts: list[tuple[str, str, str, str]] = []
        for vid, d in items:
            row = rows.get(vid)
            if row is None:
                continue
            row.description, row.caption = d.to_dict(), d.caption
            row.search_text = build_search_text(d)
            fts.append((vid, row.tenant, row.kind, row.search_text))
        cat._fts_delete(s, [v for v, *_ in fts])
        cat._fts_insert(s, fts)
        media = sorted({rows[v].media_id for v, *_ in fts})
        if media:
            s.execute(update(MediaRow).where(MediaRow.id.in_(media)).values(updated_at=utcnow()))


def _chunks(core: Glimpse, bs: int) -> Iterator[list[ViewRecord]]:
    for page in core.catalog.iter_views(batch=max(bs, 64)):
        for i in range(0, len(page), bs):
            yield page[i : i + bs]
