"""Hybrid retrieval: vector lists per space plus lexical matches, fused by weighted
reciprocal-rank fusion, joined to the catalog and grouped by media.

Text query  → semantic(text) + caption(text) + lexical(text)
Image query → visual(image) [if the backend has it] + semantic(image) + caption(image)
Both        → all of the above, fused.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PIL import Image

from indexer.domain import Step, ViewInput
from indexer.errors import InvalidRequest
from indexer.models.base import relevance_from_similarity
from indexer.stores.catalog import MediaRow, ViewRecord
from indexer.stores.vectors import VectorFilter

if TYPE_CHECKING:
    from indexer.context import Glimpse

log = logging.getLogger(__name__)

# How much each ranked list counts in the fusion. `visual` raised from 1.2 on the tuxpaint
# tuning half: the candidate pool of an example-image query then holds its visual neighbours.
LIST_WEIGHTS = {
    "semantic": 1.0,
    "caption": 0.6,
    "lexical": 0.8,
    "visual": 2.0,
    "image_semantic": 0.8,
    "image_caption": 0.3,
}


# Lists whose scores are cosine similarities (used for moments and `similarity`).
SIMILARITY_LISTS = ("semantic", "image_semantic", "visual")
# A shot belongs to a moment when its similarity is this close to the video's best shot.
MOMENT_MARGIN = 0.04
# After a text rerank, a shot belongs to the moment when its calibrated relevance is this
# close to the best shot's (cosines of ConSE vectors are too flat to tell a sky-blue shot
# from the astronaut one; the relevance's concept and face evidence can)
MOMENT_RELEVANCE_MARGIN = 0.15


# What each kind filter admits: (media kind, content class of the view); None = any.
KIND_RULES: dict[str, list[tuple[str, str | None]]] = {
    "image": [("image", None)],
    "photo": [("image", "photo")],
    "video": [("video", None)],
    "document": [("document", None), ("image", "document")],
    "chart": [("image", "chart"), ("document", "chart")],
}


def kind_ok(kinds: list[str] | None, media_kind: str, content: str | None) -> bool:
    if not kinds:
        return True
    for k in kinds:
        for mk, ck in KIND_RULES.get(k, [(k, None)]):
            if mk == media_kind and (ck is None or ck == content):
                return True
    return False


@dataclass
class SearchFilters:
    kinds: list[str] | None = None
    tenant: str | None = None
    media_ids: list[str] | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    # None: every media; False: leave out generated images; True: only generated images
    generated: bool | None = None


@dataclass
class SearchQuery:
    text: str | None = None
    image: Image.Image | None = None
    example_media_id: str | None = None
    k: int = 10
    filters: SearchFilters = field(default_factory=SearchFilters)
    rerank: bool = True
    rerank_n: int = 20
    explain: bool = False
    explain_m: int = 5


@dataclass
class ListHit:
    list_name: str
    rank: int
    score: float


@dataclass
class SearchResult:
    media_id: str
    view_id: str
    kind: str
    view_kind: str
    score: float
    similarity: float | None
    caption: str
    t_start: float | None
    t_end: float | None
    page: int | None
    filename: str | None
    matched: list[ListHit]
    view: ViewRecord
    media: MediaRow
    other_views: list[str] = field(default_factory=list)
    moments: list[dict[str, Any]] = field(default_factory=list)
    relevance: float | None = None
    steps: list[Step] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "media_id": self.media_id, "view_id": self.view_id, "kind": self.kind,
            "view_kind": self.view_kind, "score": round(self.score, 4),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "caption": self.caption, "t_start": self.t_start, "t_end": self.t_end,
            "page": self.page, "filename": self.filename,
            "matched": [{"list": h.list_name, "rank": h.rank, "score": round(h.score, 4)}
                        for h in self.matched],
            "other_views": self.other_views,
            "moments": self.moments,
            "relevance": None if self.relevance is None else round(self.relevance, 4),
            "explanation": None if self.steps is None else [
                {"n": i + 1, "text": st.text, "evidence": st.evidence}
                for i, st in enumerate(self.steps)],
            "tags": [{"label": t.label, "score": round(t.score, 3), "source": t.source}
                     for t in self.view.description.tags[:8]],
        }


@dataclass
class SearchResponse:
    results: list[SearchResult]
    timings_ms: dict[str, float]
    lists: dict[str, int]
    stages: list[str] = field(default_factory=list)
    no_good_match: bool = False
    message: str | None = None


class SearchService:
    def __init__(self, core: Glimpse) -> None:
        self.core = core

    def search(self, q: SearchQuery) -> SearchResponse:
        text = (q.text or "").strip() or None
        if text is None and q.image is None and q.example_media_id is None:
            raise InvalidRequest("give a text query, an image, or a media_id to search by")
        if not 1 <= q.k <= 200:
            raise InvalidRequest("k must be between 1 and 200")
        if text is not None and len(text) > 1000:
            raise InvalidRequest("query text is longer than 1000 characters")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        deep = max(self.core.settings.search.retrieve_k, q.k * 5)
        media_kinds = None
        if q.filters.kinds:
            media_kinds = sorted({mk for k in q.filters.kinds
                                  for mk, _ in KIND_RULES.get(k, [(k, None)])})
        flt = VectorFilter(tenant=q.filters.tenant or self.core.settings.tenant,
                           kinds=media_kinds, media_ids=q.filters.media_ids)
        lists: dict[str, list[tuple[str, float]]] = {}
        model = self.core.model
        vs = self.core.vectors
        exclude: set[str] = set()

        if text is not None:
            qv = model.embed_texts([text])[0]
            timings["embed_text"] = _ms(t0)
            lists["semantic"] = _hits(vs.search("semantic", qv, deep, flt))
            lists["caption"] = _hits(vs.search("caption", qv, deep, flt))
            t1 = time.perf_counter()
            lists["lexical"] = self.core.catalog.lexical_search(
                text, k=deep, tenant=flt.tenant, kinds=media_kinds)
            timings["lexical"] = _ms(t1)

        image = q.image
        iv: dict[str, Any] = {}
        if q.example_media_id is not None:
            image = self._example_image(q.example_media_id, flt.tenant)
            exclude.add(q.example_media_id)
        if image is not None:
            t1 = time.perf_counter()
            iv = model.embed_query_images([ViewInput("query", image.convert("RGB"))])[0]
            timings["embed_image"] = _ms(t1)
            if "visual" in iv and "visual" in vs.spaces:
                lists["visual"] = _hits(vs.search("visual", iv["visual"], deep, flt))
            lists["image_semantic"] = _hits(vs.search("semantic", iv["semantic"], deep, flt))
            lists["image_caption"] = _hits(vs.search("caption", iv["semantic"], deep, flt))
        timings["retrieve"] = _ms(t0)

        t2 = time.perf_counter()
        fused = fuse(lists, self.core.settings.search.rrf_k)
        pool = max(q.k, q.rerank_n if q.rerank else q.k)
        if q.rerank and text is None:
            # an example-image query's relevance is a cosine the lists already hold, so a
            # deeper pool costs nothing and keeps neighbours the fusion ranked lower
            pool = max(pool, 3 * q.k)
        results = self._join(fused, lists, q, exclude, limit=pool)
        timings["fuse_join"] = _ms(t2)
        stages = ["retrieve"]
        cfg = self.core.settings.search
        threshold = cfg.no_match_threshold_image if text is None else (
            cfg.no_match_threshold if image is None
            else 0.5 * (cfg.no_match_threshold + cfg.no_match_threshold_image))
        if q.rerank and results:
            # every candidate of the pool gets a relevance, and the list is ordered by it:
            # the response is sorted by the score each card shows
            t3 = time.perf_counter()
            if image is not None:
                self._visual_relevance(iv, results, flt)
            if text is not None:
                self._rerank(text, results)
                self._video_moments_by_relevance(text, results)
            order = sorted(range(len(results)),
                           key=lambda i: (-(results[i].relevance or 0.0), i))
            results = [results[i] for i in order]
            timings["rerank"] = _ms(t3)
            stages.append("rerank")
        results = results[: q.k]
        if q.explain and results:
            t4 = time.perf_counter()
            self._explain(text, results[: q.explain_m], threshold)
            timings["explain"] = _ms(t4)
            stages.append("explain")
        timings["total"] = _ms(t0)
        no_match = bool(results) and all(
            r.relevance is not None and r.relevance < threshold for r in results)
        msg = None
        if not results:
            msg = "nothing is indexed that matches these filters"
        elif no_match:
            msg = (f"no good match: the best relevance is {results[0].relevance:.2f}, under "
                   f"the {threshold:.2f} threshold; these are the nearest results")
        return SearchResponse(results, timings, {k: len(v) for k, v in lists.items()},
                              stages, no_match, msg)

    def _rerank(self, text: str, results: list[SearchResult]) -> None:
        """Score each candidate with the model's calibrated text relevance. With an example
        image too, a candidate's relevance is the mean of the two: it should match both."""
        model = self.core.model
        for r in results:
            view = self._view_input(r.view, need_pixels=model.generative)
            rel = float(model.score(text, view, r.view.description))
            r.relevance = rel if r.relevance is None else 0.5 * (rel + r.relevance)

    def _video_moments_by_relevance(self, text: str, results: list[SearchResult]) -> None:
        """A video's moments from its shots' calibrated relevance to the query: every
        candidate shot is scored, the result points at the best moment, and its relevance
        is that of the shot it now shows."""
        model = self.core.model
        vids = [r for r in results if r.kind == "video" and r.other_views]
        if not vids:
            return
        shots = self.core.catalog.views_by_ids(
            [vid for r in vids for vid in [r.view_id, *r.other_views]])
        for r in vids:
            rel: dict[str, float] = {}
            if r.relevance is not None:
                rel[r.view_id] = r.relevance
            for vid in r.other_views:
                v = shots.get(vid)
                if v is not None and v.kind == "frame":
                    view = self._view_input(v, need_pixels=model.generative)
                    rel[vid] = float(model.score(text, view, v.description))
            self._moments(r, shots, rel, margin=MOMENT_RELEVANCE_MARGIN)
            r.relevance = rel.get(r.view_id, r.relevance)

    def _visual_relevance(self, iv: dict[str, Any], results: list[SearchResult],
                          flt: VectorFilter) -> None:
        """Calibrated relevance of each candidate to the example image: its cosine in the
        model's image space (`visual` where the backend has one, else `semantic`) mapped
        through the model's calibration for that space."""
        space = "visual" if "visual" in iv and "visual" in self.core.vectors.spaces \
            else "semantic"
        sims: dict[str, float] = {}
        for r in results:
            hit = next((h.score for h in r.matched
                        if h.list_name == ("visual" if space == "visual" else "image_semantic")),
                       None)
            if hit is not None:
                sims[r.view_id] = hit
        missing = [r for r in results if r.view_id not in sims]
        if missing:  # candidates the list did not reach: ask the store for exactly those
            sub = VectorFilter(tenant=flt.tenant, kinds=flt.kinds,
                               media_ids=sorted({r.media_id for r in missing}))
            n = sum(1 + len(r.other_views) for r in missing)
            for vid, sc in _hits(self.core.vectors.search(space, iv[space], n, sub)):
                sims.setdefault(vid, sc)
        rel = relevance_from_similarity(self.core.model, space,
                                        [sims.get(r.view_id, 0.0) for r in results])
        for r, x in zip(results, rel, strict=True):
            r.relevance = float(x)

    def _explain(self, text: str | None, results: list[SearchResult], threshold: float) -> None:
        from indexer.reasoning.explain import explain

        near = self._near_labels(text, results) if text else {}
        for r in results:
            r.steps = explain(text, r.view, r.matched, r.relevance, threshold,
                              near_labels=near.get(r.view_id))

    def _near_labels(
        self, text: str, results: list[SearchResult]
    ) -> dict[str, dict[str, tuple[str, float]]]:
        """For query terms with no literal match in a result, its closest tag by text
        similarity (one batched embedding call for all results)."""
        from indexer.reasoning.evidence import find_concept
        from indexer.stores.catalog import search_terms

        terms = search_terms(text)
        labels = sorted({t.label for r in results for t in r.view.description.tags
                         if t.source in ("classifier", "hierarchy")})
        if not terms or not labels:
            return {}
        vecs = self.core.model.embed_texts(terms + labels)
        tv, lv = vecs[: len(terms)], vecs[len(terms):]
        sims = tv @ lv.T
        index = {lab: i for i, lab in enumerate(labels)}
        out: dict[str, dict[str, tuple[str, float]]] = {}
        for r in results:
            own = [t.label for t in r.view.description.tags
                   if t.source in ("classifier", "hierarchy")]
            if not own:
                continue
            per: dict[str, tuple[str, float]] = {}
            for ti, term in enumerate(terms):
                if find_concept(r.view.description, term):
                    continue
                best = max(own, key=lambda lab: sims[ti, index[lab]])
                per[term] = (best, float(sims[ti, index[best]]))
            out[r.view_id] = per
        return out

    def _view_input(self, v: ViewRecord, *, need_pixels: bool) -> ViewInput:
        if need_pixels:
            return ViewInput(v.id, self.core.view_image(v), v.kind,  # type: ignore[arg-type]
                             v.t_start, v.t_end, v.page)
        return ViewInput(v.id, Image.new("RGB", (1, 1)), v.kind,  # type: ignore[arg-type]
                         v.t_start, v.t_end, v.page)

    def _example_image(self, media_id: str, tenant: str | None) -> Image.Image:
        from indexer.errors import NotFound
        from indexer.media.images import load_rgb, load_view_rgb

        media = self.core.catalog.get_media(media_id)
        if tenant is not None and media.tenant != tenant:  # another tenant's: unknown
            raise NotFound(f"media {media_id!r} not found")
        views = self.core.catalog.views_of(media_id)
        if media.kind == "image":
            return load_view_rgb(self.core.blobs.open_path(media.sha256),
                                 self.core.settings.limits)
        for v in views:
            if v.image_sha256:
                return load_rgb(self.core.blobs.open_path(v.image_sha256))
        raise InvalidRequest(f"media {media_id} has no indexed image to search by")

    def _join(
        self, fused: list[tuple[str, float]], lists: dict[str, list[tuple[str, float]]],
        q: SearchQuery, exclude: set[str], *, limit: int,
    ) -> list[SearchResult]:
        ranks: dict[str, list[ListHit]] = defaultdict(list)
        for name, hits in lists.items():
            for r, (vid, sc) in enumerate(hits):
                ranks[vid].append(ListHit(name, r + 1, sc))
        top_ids = [vid for vid, _ in fused[: limit * 20]]
        views = self.core.catalog.views_by_ids(top_ids)
        media = self.core.catalog.media_by_ids(list({v.media_id for v in views.values()}))
        flt_tenant = q.filters.tenant or self.core.settings.tenant
        best: dict[str, SearchResult] = {}
        order: list[str] = []
        for vid, score in fused:
            v = views.get(vid)
            if v is None:  # an orphan point (crash between stores) or not in the top slice
                continue
            m = media.get(v.media_id)
            if m is None or m.status != "ready" or m.id in exclude or (
                    flt_tenant is not None and m.tenant != flt_tenant):
                continue
            if not _date_ok(m, q.filters):
                continue
            if q.filters.generated is not None and (
                    (getattr(m, "origin", "upload") == "generated") != q.filters.generated):
                continue
            if not kind_ok(q.filters.kinds, m.kind, v.description.extra.get("content")):
                continue
            if m.id in best:
                best[m.id].other_views.append(vid)
                continue
            own = [h.score for h in ranks[vid] if h.list_name in SIMILARITY_LISTS]
            best[m.id] = SearchResult(
                media_id=m.id, view_id=vid, kind=m.kind, view_kind=v.kind, score=score,
                similarity=max(own) if own else None, caption=v.caption,
                t_start=v.t_start, t_end=v.t_end, page=v.page, filename=m.filename,
                matched=sorted(ranks[vid], key=lambda h: h.rank), view=v, media=m,
            )
            order.append(m.id)
        out = [best[mid] for mid in order[:limit]]
        sims = {vid: max((h.score for h in hs if h.list_name in SIMILARITY_LISTS), default=0.0)
                for vid, hs in ranks.items()}
        for res in out:
            if res.kind == "video":
                self._moments(res, views, sims)
        return out

    @staticmethod
    def _moments(r: SearchResult, views: dict[str, ViewRecord], sims: dict[str, float],
                 margin: float = MOMENT_MARGIN) -> None:
        """Matching shots of a video — those whose similarity is within MOMENT_MARGIN of the
        video's best shot — merge into moments when adjacent; the result points at the best
        moment's time range."""
        from indexer.media.video import merge_moments

        cands = [views[vid] for vid in [r.view_id, *r.other_views] if vid in views]
        cands = [v for v in cands if v.kind == "frame" and v.t_start is not None]
        if not cands:
            return
        top = max(sims.get(v.id, 0.0) for v in cands)
        hits = [(float(v.t_start or 0.0), float(v.t_end or v.t_start or 0.0),
                 sims.get(v.id, 0.0), v.idx)
                for v in cands if sims.get(v.id, 0.0) >= top - margin]
        if not hits:
            return
        moments = sorted(merge_moments(hits), key=lambda m: -m.score)
        r.moments = [{"t_start": round(m.t_start, 3), "t_end": round(m.t_end, 3),
                      "score": round(m.score, 4), "shots": list(m.shot_indices)}
                     for m in moments[:5]]
        r.t_start, r.t_end = r.moments[0]["t_start"], r.moments[0]["t_end"]
        # the result's view is the best shot of the best moment, so its thumbnail, boxes
        # and explanation agree with the time range that plays
        in_best = [v for v in cands if v.idx in set(moments[0].shot_indices)]
        if in_best:
            shot = max(in_best, key=lambda v: sims.get(v.id, 0.0))
            if shot.id != r.view_id:
                r.other_views = [r.view_id] + [x for x in r.other_views if x != shot.id]
                r.view_id, r.view, r.view_kind = shot.id, shot, shot.kind
                r.caption, r.page = shot.caption, shot.page


def fuse(lists: dict[str, list[tuple[str, float]]], rrf_k: int) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion (Cormack et al. 2009), best first."""
    acc: dict[str, float] = defaultdict(float)
    for name, hits in lists.items():
        w = LIST_WEIGHTS.get(name, 1.0)
        for r, (vid, _) in enumerate(hits):
            acc[vid] += w / (rrf_k + r + 1)
    return sorted(acc.items(), key=lambda kv: (-kv[1], kv[0]))


def _hits(hits: list[Any]) -> list[tuple[str, float]]:
    return [(h.payload["view_id"], float(h.score)) for h in hits]


def _date_ok(m: MediaRow, f: SearchFilters) -> bool:
    created = m.created_at
    if created is not None and created.tzinfo is None and (f.date_from or f.date_to):
        from datetime import UTC

        created = created.replace(tzinfo=UTC)
    if f.date_from and created < f.date_from:
        return False
    return not (f.date_to and created > f.date_to)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
