"""What the index has to compose with: instances of a concept, backgrounds for a scene, and
their pixels (with alpha where the source file has it). Scoped to one tenant; generated media
are never used as sources."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

from indexer.domain import Box
from indexer.reasoning.evidence import canonical, find_concept
from indexer.stores.vectors import VectorFilter

if TYPE_CHECKING:
    from indexer.context import Glimpse

log = logging.getLogger(__name__)

MIN_TAG_SCORE = 0.12  # a classifier tag under this is too weak to cut an instance from
MIN_OBJECT_SCORE = 0.3


@dataclass(frozen=True)
class Candidate:
    concept: str
    media_id: str
    view_id: str
    label: str  # the stored label that matched
    score: float
    source: str  # classifier | hierarchy | detector ...
    box: Box | None  # None: the whole view is the instance
    tier: int = 0  # 0 best: how much of the index's evidence agrees (see candidates)


class IndexLibrary:
    def __init__(self, core: Glimpse, tenant: str) -> None:
        self.core = core
        self.tenant = tenant
        self._pixels: dict[str, Image.Image] = {}

    def _views(self, concept: str, k: int) -> list[str]:
        """View ids that may show the concept: lexical matches on stored labels first, then
        the nearest in the semantic space (image media only, this tenant only)."""
        cat = self.core.catalog
        lexical = [v for v, _ in cat.lexical_search(concept, k=k, tenant=self.tenant,
                                                    kinds=["image"])]
        qv = self.core.model.embed_texts([f"a photo of a {concept}"])[0]
        flt = VectorFilter(tenant=self.tenant, kinds=["image"])
        semantic = [h.payload["view_id"] for h in self.core.vectors.search("semantic", qv, k, flt)]
        seen: dict[str, None] = {}
        for v in lexical + semantic:
            seen.setdefault(v, None)
        return list(seen)

    def candidates(self, concept: str, *, k: int = 60) -> list[Candidate]:
        """Instances of the concept, best first: a detector box of it, or a view whose own
        tags name it (the whole view is then the instance)."""
        ids = self._views(concept, k)
        views = self.core.catalog.views_by_ids(ids)
        media = self.core.catalog.media_by_ids(list({v.media_id for v in views.values()}))
        out: list[Candidate] = []
        for vid in ids:
            v = views.get(vid)
            if v is None or v.tenant != self.tenant:
                continue
            m = media.get(v.media_id)
            if m is None or m.status != "ready" or m.kind != "image" or is_generated(m):
                continue
            for match in find_concept(v.description, concept):
                if match.kind == "object" and match.box is not None:
                    if match.score >= MIN_OBJECT_SCORE:
                        out.append(Candidate(concept, m.id, vid, match.label, match.score,
                                             "detector", match.box))
                elif (match.kind == "tag" and match.source in ("classifier", "hierarchy")
                      and match.score >= MIN_TAG_SCORE):
                    out.append(Candidate(concept, m.id, vid, match.label, match.score,
                                         match.source, None))
        # one candidate per view (two instances of one photo would look the same): the best
        # ranked of its detector boxes and tags
        best: dict[str, Candidate] = {}
        for c in out:
            def key(x: Candidate) -> tuple[bool, float]:
                return (x.source == "detector", _rank_score(x))
            if c.view_id not in best or key(c) > key(best[c.view_id]):
                best[c.view_id] = c
        # when the detector has boxed the concept anywhere in the index, it is a class the
        # detector knows: sources where it found the object come first (the verifier will
        # only accept an instance the detector boxes in the composition too)
        # (a detector box the classifier agrees with, on the same view, comes before a bare
        # box: CenterNet has called an avocado a cat)
        boxed = any(c.source == "detector" for c in best.values())
        agreed = {c.view_id for c in out if c.source in ("classifier", "hierarchy")}
        tiered = [replace(c, tier=2 * (boxed and c.source != "detector")
                          + (boxed and c.view_id not in agreed)) for c in best.values()]
        return sorted(tiered, key=lambda c: (c.tier, -_rank_score(c), c.view_id))

    def backgrounds(self, scene: str, *, k: int = 40) -> list[Candidate]:
        """Whole views whose tags name the scene, best first."""
        return [c for c in self.candidates(scene, k=k) if c.box is None]

    def pixels(self, media_id: str, view_id: str) -> Image.Image:
        """RGBA pixels of an image media at its view's size (boxes are on the view); alpha is
        the file's own, or opaque."""
        if view_id in self._pixels:
            return self._pixels[view_id]
        from indexer.media.images import check_header

        m = self.core.catalog.get_media(media_id)
        v = self.core.catalog.get_view(view_id)
        with Image.open(self.core.blobs.open_path(m.sha256)) as src:
            check_header(src, self.core.settings.limits)
            im = ImageOps.exif_transpose(src)
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (
                im.mode == "P" and "transparency" in im.info)
            im = im.convert("RGBA" if has_alpha else "RGB").convert("RGBA")
        if v.width and v.height and (im.width, im.height) != (v.width, v.height):
            im = im.resize((v.width, v.height), Image.Resampling.LANCZOS)
        if len(self._pixels) > 64:
            self._pixels.clear()
        self._pixels[view_id] = im
        return im


def _rank_score(c: Candidate) -> float:
    # a detector box is the most specific evidence; a specific class beats a hypernym; a
    # label that says the concept's own words beats a synonym ("vehicle" for "car")
    bonus = {"detector": 0.15, "classifier": 0.05, "hierarchy": 0.0}.get(c.source, 0.0)
    words = _WORDS.findall(c.label.lower())
    concept = _WORDS.findall(c.concept.lower())
    if [canonical(w) for w in words] == [canonical(w) for w in concept]:
        bonus += 0.3  # the label is the concept ("cat")
    elif set(concept) <= set(words):
        bonus += 0.15  # the label contains it ("tabby cat", also "big cat")
    return c.score + bonus


_WORDS = re.compile(r"[a-z0-9]+")


def is_generated(media: object) -> bool:
    return getattr(media, "origin", None) == "generated"
