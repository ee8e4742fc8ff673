"""Checking a composition with the index's own understanding, constraint by constraint.

The model that indexes the library describes the result, and each placed instance's crop
of the result (classifier tags; detector objects where the backend has a detector), in one
batch. A constraint is satisfied only when that description confirms it:
- count: every instance of the object is recognised as the object where it was placed (by
  a matching tag of its crop, or a detector box of the object overlapping it), and the
  detector sees no further instance of it elsewhere;
- colour: the dominant colour of the instance's own pixels has the asked name;
- relation: the relation holds between the boxes the perception confirmed (a detector box
  when there is one, else the placed box whose crop was recognised); an unconfirmed
  instance makes the relation unconfirmed, never assumed;
- scene: the classifier names the scene on the background part of the result (or on the
  whole result).
The prompt's relevance score by the model (ConSE for the cpu backend) is reported beside the
checks; it is a score, not a constraint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from indexer.domain import Box, Description, DetectedObject, ViewInput
from indexer.generation.base import Check
from indexer.generation.compose import colour_name
from indexer.generation.geometry import group_relation_holds
from indexer.generation.prompt import RELATION_WORDS, Plan
from indexer.models.base import VisionLanguageModel
from indexer.models.cpu.detectors import iou
from indexer.reasoning.evidence import Match, find_concept

MIN_CROP_TAG = 0.1  # a crop's classifier tag must be at least this probable to confirm
MIN_DETECTION = 0.3


@dataclass
class Placed:
    group: int
    instance: int
    box: Box  # on the result
    patch: Image.Image  # the RGBA pixels as pasted (for the colour check)


def _crop(image: Image.Image, b: Box, margin: float = 0.08) -> Image.Image:
    w, h = b.x1 - b.x0, b.y1 - b.y0
    return image.crop((max(0, round(b.x0 - margin * w)), max(0, round(b.y0 - margin * h)),
                       min(image.width, round(b.x1 + margin * w)),
                       min(image.height, round(b.y1 + margin * h))))


def _tag_matches(d: Description, concept: str) -> list[Match]:
    return [m for m in find_concept(d, concept)
            if m.kind == "tag" and m.source in ("classifier", "hierarchy")
            and m.score >= MIN_CROP_TAG]


def _object_matches(d: Description, concept: str) -> list[Match]:
    return [m for m in find_concept(d, concept)
            if m.kind == "object" and m.box is not None and m.score >= MIN_DETECTION]


def background_box(image: Image.Image, placed: Sequence[Placed]) -> Box | None:
    """The largest band along an edge of the result that no instance covers."""
    w, h = image.size
    if not placed:
        return Box(0, 0, w, h)
    top = min(p.box.y0 for p in placed)
    left = min(p.box.x0 for p in placed)
    right = max(p.box.x1 for p in placed)
    bottom = max(p.box.y1 for p in placed)
    bands = [Box(0, 0, w, top), Box(0, 0, left, h), Box(right, 0, w, h), Box(0, bottom, w, h)]
    bands = [b for b in bands if (b.x1 - b.x0) >= 32 and (b.y1 - b.y0) >= 32]
    return max(bands, key=lambda b: b.area) if bands else None


def detector_vocabulary(model: VisionLanguageModel) -> list[str]:
    """The object classes the model's detector can box (empty: none, or it is off)."""
    det = getattr(model, "objects", None)
    if det is None:
        return []
    try:
        if not det.available:
            return []
        from indexer.models.cpu.objects import COCO_LABELS
    except Exception:  # noqa: BLE001 - no detector means classifier evidence only
        return []
    return list(COCO_LABELS)


class Verifier:
    def __init__(self, model: VisionLanguageModel) -> None:
        self.model = model
        self._vocab: Description | None = None

    def detectable(self, concept: str) -> bool:
        """Whether the detector has a class for the concept: then only its boxes confirm an
        instance (a crop's tag cannot tell one object from two, nor where it stands)."""
        if self._vocab is None:
            self._vocab = Description("", objects=[
                DetectedObject(label, 1.0, Box(0, 0, 1, 1))
                for label in detector_vocabulary(self.model)])
        return bool(find_concept(self._vocab, concept))

    def check(self, image: Image.Image, plan: Plan, placed: Sequence[Placed]
              ) -> tuple[list[Check], dict[str, float], Description]:
        views = [ViewInput("generated", image)]
        views += [ViewInput(f"instance-{p.group}-{p.instance}", _crop(image, p.box))
                  for p in placed]
        bg = background_box(image, placed) if plan.scene is not None else None
        if bg is not None:
            views.append(ViewInput("background", image.crop(
                (round(bg.x0), round(bg.y0), round(bg.x1), round(bg.y1)))))
        descs = [e.description for e in self.model.encode_views(views)]
        full = descs[0]
        crops = descs[1:1 + len(placed)]
        checks: list[Check] = []
        confirmed: dict[int, list[Box | None]] = {}
        for g, obj in enumerate(plan.objects):
            mine = [(p, d) for p, d in zip(placed, crops, strict=True) if p.group == g]
            detections = _object_matches(full, obj.noun)
            evidence: list[dict[str, Any]] = []
            boxes: list[Box | None] = []
            used: set[int] = set()
            boxed = self.detectable(obj.noun)
            for p, d in mine:
                hit = None
                for k, m in enumerate(detections):
                    if k not in used and m.box is not None and iou(m.box, p.box) >= 0.3:
                        hit = (k, m)
                        break
                tags = _tag_matches(d, obj.noun)
                ev: dict[str, Any] = {"instance": p.instance, "placed": p.box.as_list()}
                if hit is not None:
                    used.add(hit[0])
                    assert hit[1].box is not None
                    boxes.append(hit[1].box)
                    ev.update(by="detector", label=hit[1].label, score=round(hit[1].score, 3),
                              box=hit[1].box.as_list())
                elif tags and not boxed:
                    best = max(tags, key=lambda m: m.score)
                    boxes.append(p.box)
                    ev.update(by=best.source, label=best.label, score=round(best.score, 3))
                elif tags:  # the detector knows the class and did not box this instance
                    boxes.append(None)
                    best = max(tags, key=lambda m: m.score)
                    ev.update(by=None, crop_tag=[best.label, round(best.score, 3)],
                              why="the detector has this class and did not find it here")
                else:
                    boxes.append(None)
                    top = [t for t in d.tags if t.source == "classifier"][:3]
                    ev.update(by=None, seen=[[t.label, round(t.score, 3)] for t in top])
                evidence.append(ev)
            extra = [m for k, m in enumerate(detections) if k not in used]
            for m in extra:
                assert m.box is not None
                evidence.append({"extra_detection": m.label, "score": round(m.score, 3),
                                 "box": m.box.as_list()})
            n_ok = sum(b is not None for b in boxes)
            ok = n_ok == obj.count and not extra
            detail = (f"{n_ok} of {obj.count} {obj.noun} recognised where placed"
                      + (f"; {len(extra)} more detected elsewhere" if extra else ""))
            checks.append(Check(f"{obj.count} {obj.noun}", "count", ok, evidence, detail))
            confirmed[g] = boxes
            if obj.colour:
                checks.append(self._colour(obj.noun, obj.colour, [p for p, _ in mine]))
        for r in plan.relations:
            a, b = confirmed[r.subject], confirmed[r.object]
            words = r.words(plan)
            if any(x is None for x in a) or any(x is None for x in b):
                checks.append(Check(words, "relation", False, [], "not confirmed: an "
                                    "instance was not recognised, so its position is unknown"))
                continue
            ab = [x for x in a if x is not None]
            bb = [x for x in b if x is not None]
            ok = group_relation_holds(r.kind, ab, bb)
            checks.append(Check(words, "relation", ok, [
                {"subject": [x.as_list() for x in ab], "object": [x.as_list() for x in bb],
                 "relation": RELATION_WORDS[r.kind]}],
                f"{'holds' if ok else 'does not hold'} between the recognised boxes"))
        if plan.scene is not None:
            checks.append(self._scene(plan.scene.noun, full, descs[-1] if bg else None, bg))
        scores = {"prompt_relevance": round(float(self.model.score(
            plan.prompt, views[0], full)), 4)}
        return checks, scores, full

    @staticmethod
    def _colour(noun: str, colour: str, mine: Sequence[Placed]) -> Check:
        ev = []
        ok = bool(mine)
        for p in mine:
            name, share = colour_name(p.patch)
            ev.append({"instance": p.instance, "measured": name, "share": round(share, 3)})
            ok = ok and name == colour
        return Check(f"{noun} is {colour}", "colour", ok, ev,
                     "dominant colour of the instance's own pixels")

    @staticmethod
    def _scene(noun: str, full: Description, band: Description | None, bg: Box | None
               ) -> Check:
        ev: list[dict[str, Any]] = []
        for where, d in (("whole image", full), ("background band", band)):
            if d is None:
                continue
            hits = _tag_matches(d, noun)
            if hits:
                best = max(hits, key=lambda m: m.score)
                ev.append({"where": where, "label": best.label, "score": round(best.score, 3),
                           **({"box": bg.as_list()} if bg and where != "whole image" else {})})
        # the scene must be what the whole result shows; the band alone (the backdrop's
        # own corner) is reported but does not confirm it
        if ev and ev[0]["where"] == "whole image":
            return Check(f"scene: {noun}", "scene", True, ev,
                         "the classifier names the scene on the whole result")
        seen = [[t.label, round(t.score, 3)] for t in full.tags[:3]]
        return Check(f"scene: {noun}", "scene", False, [{"seen": seen}, *ev],
                     "the classifier does not name the scene on the whole result")


def satisfied_share(checks: Sequence[Check]) -> float:
    return float(np.mean([c.satisfied for c in checks])) if checks else 0.0


def check_whole_image(model: VisionLanguageModel, image: Image.Image, plan: Plan
                      ) -> tuple[list[Check], dict[str, float]]:
    """Checks for an image whose layout nobody told us (a diffusion or hosted backend): the
    model describes the whole image; counts and relations need detector boxes of the class,
    colours are measured inside those boxes, the scene is a tag. What the description cannot
    show is reported unconfirmed."""
    view = ViewInput("generated", image)
    d = model.encode_views([view])[0].description
    checks: list[Check] = []
    boxes: dict[int, list[Box]] = {}
    for g, o in enumerate(plan.objects):
        objs = _object_matches(d, o.noun)
        tags = _tag_matches(d, o.noun)
        boxes[g] = [m.box for m in objs if m.box is not None]
        ev = [m.as_evidence("generated") for m in objs + tags]
        if objs:
            ok, why = len(objs) == o.count, f"{len(objs)} detected"
        elif tags and o.count == 1:
            ok, why = True, "named by the classifier (no box)"
        else:
            ok, why = False, "not recognised" if not tags else "named, but not countable"
        checks.append(Check(f"{o.count} {o.noun}", "count", ok, ev, why))
        if o.colour:
            names = []
            for bx in boxes[g]:
                crop = image.crop((round(bx.x0), round(bx.y0), round(bx.x1), round(bx.y1)))
                names.append(colour_name(crop.convert("RGBA"))[0])
            checks.append(Check(f"{o.noun} is {o.colour}", "colour",
                                bool(names) and all(n == o.colour for n in names),
                                [{"measured": n} for n in names],
                                "dominant colour inside each detected box"))
    for r in plan.relations:
        a, b = boxes[r.subject], boxes[r.object]
        ok = bool(a and b) and group_relation_holds(r.kind, a, b)
        checks.append(Check(r.words(plan), "relation", ok,
                            [{"subject": [x.as_list() for x in a],
                              "object": [x.as_list() for x in b]}] if a and b else [],
                            "between detected boxes" if a and b else "no boxes to compare"))
    if plan.scene is not None:
        checks.append(Verifier._scene(plan.scene.noun, d, None, None))
    scores = {"prompt_relevance": round(float(model.score(plan.prompt, view, d)), 4)}
    return checks, scores
