"""The cpu backend: retrieval-grounded composition, verified.

parse the prompt -> retrieve indexed instances of each object and a background for the scene
-> cut them out (alpha / GrabCut) -> lay them out (relations, counts) -> blend -> verify with
the index's own model -> on a failed check, the next candidate instance, background or
layout, at most `max_attempts` times. The attempt with the most confirmed constraints is
returned with its checks as they are: a constraint is never reported satisfied unless the
verifier confirmed it. Deterministic: the same seed over the same index gives the same image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image, ImageOps

from indexer.domain import Box, ViewInput
from indexer.generation.base import Check, Generated, MissingConcept, SourceUse
from indexer.generation.compose import colour_name, cover, paste, plain_background, recolour
from indexer.generation.cutout import Cutout, cut
from indexer.generation.layout import Slot, layout
from indexer.generation.library import Candidate
from indexer.generation.prompt import Plan, parse
from indexer.generation.verify import Placed, Verifier
from indexer.models.base import VisionLanguageModel
from indexer.reasoning.evidence import find_concept

log = logging.getLogger(__name__)

COLOUR_LOOKAHEAD = 6  # candidates whose colour is measured when a colour is asked
SCREEN = 8  # candidates screened for detectability when the detector knows the class
SCENE_FILL = 0.6  # with a scene, instances fill less of their slots: the backdrop shows


class Library(Protocol):
    def candidates(self, concept: str, *, k: int = 60) -> list[Candidate]: ...
    def backgrounds(self, scene: str, *, k: int = 40) -> list[Candidate]: ...
    def pixels(self, media_id: str, view_id: str) -> Image.Image: ...


@dataclass
class _Instance:
    cand: Candidate
    cut: Cutout
    patch: Image.Image
    recoloured: str | None


class CompositionGenerator:
    name = "cpu"

    def __init__(self, library: Callable[[str], Library], model: VisionLanguageModel, *,
                 max_attempts: int = 4, blend: str = "alpha",
                 layout_fn: Callable[..., list[Slot]] = layout) -> None:
        self.library = library
        self.layout = layout_fn  # a seam: the bench swaps in a random layout as a baseline
        self.verifier = Verifier(model)
        self.max_attempts = max(1, max_attempts)
        self.blend = blend
        self._cuts: dict[tuple[str, Box | None], Cutout | None] = {}
        self._screened: dict[tuple[str, Box | None, str], bool] = {}

    def generate(self, prompt: str, seed: int, *, size: tuple[int, int] = (512, 512),
                 tenant: str = "default") -> Generated:
        t0 = time.perf_counter()
        plan = parse(prompt)
        lib = self.library(tenant)
        cands, bgs, missing = self._retrieve(lib, plan)
        if missing:
            raise MissingConcept(
                "the index has nothing showing " + ", ".join(f"'{m}'" for m in missing)
                + "; index images of it first (nothing was generated)",
                detail={"missing": missing})
        timings = {"retrieve": _ms(t0)}
        width, height = size
        offsets = [0] * len(plan.objects)
        bg_index = 0
        fill = SCENE_FILL if plan.scene is not None else 1.0
        best: Generated | None = None
        best_key: tuple[int, int] = (-1, 0)
        for attempt in range(self.max_attempts):
            rng = np.random.default_rng([seed, attempt])
            t1 = time.perf_counter()
            groups = [self._instances(lib, plan, g, cands[g], offsets[g])
                      for g in range(len(plan.objects))]
            if any(not g for g in groups):
                break  # a concept whose every candidate failed to cut
            bg = bgs[bg_index % len(bgs)] if bgs else None
            canvas = (cover(lib.pixels(bg.media_id, bg.view_id), width, height)
                      if bg is not None else plain_background(width, height))
            aspects = [[i.patch.width / max(1, i.patch.height) for i in g] for g in groups]
            slots = self.layout(plan, aspects, width, height, rng, fill=fill)
            placed: list[Placed] = []
            prov: list[SourceUse] = []
            if bg is not None:
                prov.append(SourceUse("background", bg.concept, bg.media_id, bg.view_id,
                                      None, [0, 0, width, height], "none",
                                      {"label": bg.label, "score": round(bg.score, 3),
                                       "source": bg.source}))
            # what stands lower is pasted first, so an object `on` another covers its top
            for s in sorted(slots, key=lambda s: (-s.box.y1, s.group, s.instance)):
                inst = groups[s.group][s.instance % len(groups[s.group])]
                patch = inst.patch
                if s.instance >= len(groups[s.group]) and s.instance % 2:
                    patch = ImageOps.mirror(patch)  # a repeated instance faces the other way
                box = paste(canvas, patch, s.box, blend=self.blend, match=bg is not None)
                placed.append(Placed(s.group, s.instance, box,
                                     patch.resize((max(1, round(box.x1 - box.x0)),
                                                   max(1, round(box.y1 - box.y0))))))
                c = inst.cand
                prov.append(SourceUse("object", c.concept, c.media_id, c.view_id,
                                      inst.cut.source_box.as_list(), box.as_list(),
                                      inst.cut.method, {"label": c.label,
                                                        "score": round(c.score, 3),
                                                        "source": c.source},
                                      inst.recoloured))
            placed.sort(key=lambda p: (p.group, p.instance))
            t2 = time.perf_counter()
            checks, scores, _ = self.verifier.check(canvas, plan, placed)
            timings[f"attempt_{attempt}_compose"] = round((t2 - t1) * 1000, 1)
            timings[f"attempt_{attempt}_verify"] = _ms(t2)
            got = Generated(canvas, self.name, plan.to_dict(), prov, checks, attempt + 1,
                            scores, dict(timings))
            key = (sum(c.satisfied for c in checks), -attempt)
            if key > best_key:
                best, best_key = got, key
            if all(c.satisfied for c in checks):
                break
            offsets, bg_index = self._next(plan, checks, offsets, bg_index, groups)
            if any(c.kind == "scene" and not c.satisfied for c in checks):
                fill *= 0.8  # more of the backdrop for the classifier to see
        if best is None:
            raise MissingConcept("no indexed instance of the prompt's objects could be cut "
                                 "out", detail={"missing": [o.noun for o in plan.objects]})
        best.attempts = attempt + 1
        best.timings_ms = {**timings, "total": _ms(t0)}
        best.notes.append(f"best of {attempt + 1} attempt(s): "
                          f"{best_key[0]} of {len(best.checks)} constraints confirmed")
        return best

    def missing(self, prompt: str, tenant: str) -> list[str]:
        """The prompt's concepts the index has no usable instance of (cheap: no pixels)."""
        return self._retrieve(self.library(tenant), parse(prompt))[2]

    @staticmethod
    def _retrieve(lib: Library, plan: Plan
                  ) -> tuple[list[list[Candidate]], list[Candidate], list[str]]:
        cands = [lib.candidates(o.noun) for o in plan.objects]
        bgs = lib.backgrounds(plan.scene.noun) if plan.scene is not None else []
        missing = [o.noun for o, c in zip(plan.objects, cands, strict=True) if not c]
        if plan.scene is not None and not bgs:
            missing.append(plan.scene.noun)
        return cands, bgs, missing

    def _next(self, plan: Plan, checks: list[Check], offsets: list[int], bg_index: int,
              groups: list[list[_Instance]]) -> tuple[list[int], int]:
        """What to change after a failed attempt: the candidates of an unrecognised object,
        the background of an unconfirmed scene; a relation alone gets a new layout (the
        attempt's own seed)."""
        new = list(offsets)
        counts = [c for c in checks if c.kind in ("count", "colour")]
        for g, o in enumerate(plan.objects):
            mine = [c for c in counts if c.constraint in (f"{o.count} {o.noun}",
                                                          f"{o.noun} is {o.colour}")]
            if any(not c.satisfied for c in mine):
                new[g] += max(1, len(groups[g]))
        if any(c.kind == "scene" and not c.satisfied for c in checks):
            bg_index += 1
        return new, bg_index

    def _instances(self, lib: Library, plan: Plan, g: int, cands: list[Candidate],
                   offset: int) -> list[_Instance]:
        """Up to `count` distinct instances, from candidate `offset` on (wrapping around)."""
        obj = plan.objects[g]
        order = cands[offset % len(cands):] + cands[: offset % len(cands)]
        out: list[_Instance] = []
        if obj.colour:
            order = self._by_colour(lib, order, obj.colour)
        else:  # among the first few equally supported, sources with alpha cut cleanest
            head = [c for c in order[:COLOUR_LOOKAHEAD] if c.tier == order[0].tier]
            cuts = {c: self._cut(lib, c) for c in head}
            alpha = [c for c in head if (cu := cuts[c]) is not None and cu.method == "alpha"]
            order = alpha + [c for c in order if c not in alpha]
        if self.verifier.detectable(obj.noun):
            # the verifier accepts only instances the detector boxes: try first the sources
            # it boxes when shown alone (a drawing it never finds cannot pass)
            ok = self._boxable(lib, order[:SCREEN], obj.noun)
            order = [c for c in order if c in ok] + [c for c in order if c not in ok]
        for c in order:
            cu = self._cut(lib, c)
            if cu is None:
                continue
            patch, rec = cu.image, None
            if obj.colour and colour_name(patch)[0] != obj.colour:
                patch, rec = recolour(patch, obj.colour), obj.colour
            out.append(_Instance(c, cu, patch, rec))
            if len(out) == obj.count:
                break
        return out

    def _boxable(self, lib: Library, cands: list[Candidate], noun: str) -> set[Candidate]:
        """Which candidates the detector boxes as `noun` when pasted alone on the plain
        backdrop at a typical size (one batch for the unscreened ones; cached)."""
        todo = [c for c in cands if (c.view_id, c.box, noun) not in self._screened]
        views: list[ViewInput] = []
        keys: list[tuple[str, Box | None, str]] = []
        for c in todo:
            cu = self._cut(lib, c)
            if cu is None:
                self._screened[(c.view_id, c.box, noun)] = False
                continue
            canvas = plain_background(320, 320)
            w, h = cu.image.size
            f = min(224 / w, 224 / h)
            paste(canvas, cu.image, Box(48, 48, 48 + w * f, 48 + h * f), match=False)
            views.append(ViewInput(f"screen-{len(views)}", canvas))
            keys.append((c.view_id, c.box, noun))
        if views:
            for k, enc in zip(keys, self.verifier.model.encode_views(views), strict=True):
                self._screened[k] = any(
                    m.kind == "object" for m in find_concept(enc.description, noun))
        if len(self._screened) > 2048:
            self._screened.clear()
        return {c for c in cands if self._screened.get((c.view_id, c.box, noun))}

    def _by_colour(self, lib: Library, order: list[Candidate], colour: str
                   ) -> list[Candidate]:
        """Candidates already of the asked colour first (among the first few)."""
        head = order[:COLOUR_LOOKAHEAD]
        good = []
        for c in head:
            cu = self._cut(lib, c)
            if cu is not None and colour_name(cu.image)[0] == colour:
                good.append(c)
        return good + [c for c in order if c not in good]

    def _cut(self, lib: Library, c: Candidate) -> Cutout | None:
        key = (c.view_id, c.box)
        if key not in self._cuts:
            try:
                self._cuts[key] = cut(lib.pixels(c.media_id, c.view_id), c.box, seed=0)
            except (ValueError, OSError) as e:
                log.info("cannot cut %s from %s: %s", c.concept, c.view_id, e)
                self._cuts[key] = None
            if len(self._cuts) > 256:
                self._cuts.pop(next(iter(self._cuts)))
        return self._cuts[key]


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)
