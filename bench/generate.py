"""`glimpse bench` section `generate`: the cpu generation backend on fixed prompts.

The index: real images only. Debian's `tuxpaint-stamps-default` stamps (photographs and
drawings cut out with alpha: animals, fruit, vegetables, dishes, vehicles), scikit-image's
photos, and Tux Paint's starter/template backdrops (a reef, a shore, a cliff...) where that
package is installed, ingested through the normal pipeline (OCR off: no prompt is about text).

Each prompt is generated once (fixed seed) and judged twice:
- by the generator's own verifier (what `checks` reports);
- by an independent judge the generator never calls: the image is uploaded into a separate,
  empty index through the normal ingest pipeline, and the judge reads only what ingest
  stored for it (objects with boxes, tags), with no knowledge of where anything was placed.
  Counts are the stored objects of the class; relations are computed between their boxes;
  colour is the dominant colour inside the object's box (backdrop-coloured pixels left out);
  the scene is a stored tag. A constraint the judge cannot see (a class without detector
  boxes, asked more than once or in a relation) counts as not satisfied.
Baselines in the same run, same prompts and judge: one attempt (no retries), and a random
layout (the same instances at random places). ms per image on the machine's cores (2 here),
after one warm-up prompt; the first call (cold caches) is reported on its own.
"""

from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from indexer.settings import Settings

log = logging.getLogger(__name__)

STAMPS = Path(os.environ.get("GLIMPSE_TUXPAINT_STAMPS", "/usr/share/tuxpaint/stamps"))
TUXPAINT = STAMPS.parent
STAMP_DIRS = ("animals/mammals", "animals/birds", "animals/fish", "food/fruit",
              "food/vegetables", "household/dishes", "vehicles")
BACKDROPS = ("starters/reef-back.png", "starters/skyline-sf-dusk-back.jpeg",
             "templates/cliff.jpg", "templates/ocean_waves.jpg", "templates/trees_above.jpg",
             "templates/lighthouse.jpg")
SKIMAGE = ("chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png",
           "horse.png")
SEED = 11

# (category, prompt): single objects, counts 1-4, each relation, colours, scenes
PROMPTS: list[tuple[str, str]] = [
    ("single", "a cat"), ("single", "a dog"), ("single", "a horse"),
    ("single", "an elephant"), ("single", "a bird"), ("single", "an apple"),
    ("single", "a car"), ("single", "a teddy bear"),
    ("count", "two dogs"), ("count", "three apples"), ("count", "four apples"),
    ("count", "two cats"), ("count", "three birds"), ("count", "two horses"),
    ("count", "four oranges"), ("count", "two bananas"),
    ("relation", "a cat to the left of a dog"), ("relation", "a horse to the right of a cow"),
    ("relation", "a bird above a horse"), ("relation", "an apple below a bird"),
    ("relation", "a cat on a car"), ("relation", "a dog next to a cup"),
    ("relation", "a teddy bear left of an elephant"), ("relation", "a bird above a sheep"),
    ("relation", "a banana to the right of an apple"), ("relation", "a sheep next to a cow"),
    ("relation", "two apples left of a banana"), ("relation", "a cup on a truck"),
    ("colour", "a red apple"), ("colour", "a green apple"), ("colour", "a yellow banana"),
    ("scene", "a fish on a coral reef"), ("scene", "a dog on the seashore"),
    ("scene", "a bird on a cliff"), ("scene", "a cat next to a dog on the seashore"),
    ("scene", "two horses on the shore"),
]


def _index_files() -> list[Path]:
    files: list[Path] = []
    for d in STAMP_DIRS:
        files += sorted((STAMPS / d).rglob("*.png"))
    files += [TUXPAINT / b for b in BACKDROPS if (TUXPAINT / b).exists()]
    import skimage.data

    sk = Path(skimage.data.__file__).parent
    files += [sk / f for f in SKIMAGE if (sk / f).exists()]
    return files


def _ingest(core: Any, files: list[Path]) -> list[str]:
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner

    runner = InProcessRunner(core)
    ids = [accept_path(core, f, tenant=None, enqueuer=runner).media_id for f in files]
    runner.wait_idle()
    runner.stop()
    return ids


class Judge:
    """Re-ingests a generated image into its own empty index through the normal pipeline and
    judges the plan's constraints from what ingest stored, nothing else."""

    def __init__(self, settings: Settings, model: Any) -> None:
        from indexer.context import Glimpse
        from indexer.jobs import InProcessRunner

        self.core = Glimpse(settings, model=model)
        self.core.migrate()
        self.runner = InProcessRunner(self.core)

    def judge(self, png: Path, plan: Any) -> list[dict[str, Any]]:
        from indexer.ingest import accept_path

        acc = accept_path(self.core, png, tenant=None, enqueuer=_Later())
        assert acc.job_id is not None
        self.runner.run_now(acc.job_id)
        view = self.core.catalog.views_of(acc.media_id)[0]
        image = self.core.view_image(view)
        return judge_description(view.description, plan, image)

    def close(self) -> None:
        self.runner.stop()
        self.core.close()


class _Later:
    def enqueue_ingest(self, job_id: str) -> None:  # the judge runs each job itself
        pass


def judge_description(d: Any, plan: Any, image: Any) -> list[dict[str, Any]]:
    from indexer.generation.compose import colour_name
    from indexer.generation.geometry import group_relation_holds
    from indexer.reasoning.evidence import find_concept

    out: list[dict[str, Any]] = []
    boxes: dict[int, list[Any]] = {}
    for g, o in enumerate(plan.objects):
        objs = [m for m in find_concept(d, o.noun) if m.kind == "object" and m.box is not None]
        tags = [m for m in find_concept(d, o.noun) if m.kind == "tag"]
        boxes[g] = [m.box for m in objs]
        if objs:
            ok, how = len(objs) == o.count, f"{len(objs)} detected"
        elif o.count == 1 and tags:
            ok, how = True, f"tag {tags[0].label}"
        else:
            ok, how = False, "not seen" if not tags else "tag only: cannot count"
        out.append({"constraint": f"{o.count} {o.noun}", "kind": "count", "satisfied": ok,
                    "how": how})
        if o.colour:
            names = [_box_colour(image, b, colour_name) for b in boxes[g]]
            ok = bool(names) and all(n == o.colour for n in names)
            out.append({"constraint": f"{o.noun} is {o.colour}", "kind": "colour",
                        "satisfied": ok, "how": names or "no box"})
    for r in plan.relations:
        a, b = boxes[r.subject], boxes[r.object]
        ok = bool(a and b) and group_relation_holds(r.kind, a, b)
        out.append({"constraint": r.words(plan), "kind": "relation", "satisfied": ok,
                    "how": "boxes" if a and b else "no boxes"})
    if plan.scene is not None:
        hits = [m for m in find_concept(d, plan.scene.noun) if m.kind == "tag"]
        out.append({"constraint": f"scene: {plan.scene.noun}", "kind": "scene",
                    "satisfied": bool(hits), "how": hits[0].label if hits else "no tag"})
    return out


def _box_colour(image: Any, box: Any, colour_name: Callable[[Any], tuple[str, float]]) -> str:
    """Dominant colour inside a box, leaving out pixels of the backdrop's own colour (the
    median of the image border)."""
    from PIL import Image

    a = np.asarray(image.convert("RGB"), dtype=np.int16)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    bg = np.median(border, axis=0)
    crop = a[int(box.y0):int(box.y1), int(box.x0):int(box.x1)]
    if crop.size == 0:
        return "none"
    keep = (np.abs(crop - bg).sum(axis=2) > 60).astype(np.uint8) * 255
    rgba = np.dstack([crop.astype(np.uint8), keep])
    return colour_name(Image.fromarray(rgba, "RGBA"))[0]


def _random_layout(plan: Any, aspects: list[list[float]], width: int, height: int,
                   rng: np.random.Generator, fill: float = 1.0) -> list[Any]:
    """The baseline: each instance at the size the real layout gives it, anywhere."""
    from indexer.domain import Box
    from indexer.generation.layout import Slot, layout

    try:
        sized = layout(plan, aspects, width, height, rng, fill=fill)
    except Exception:  # noqa: BLE001 - a baseline never refuses
        sized = [Slot(g, i, Box(0, 0, width / 4, height / 4))
                 for g, o in enumerate(plan.objects) for i in range(o.count)]
    out = []
    for s in sized:
        w, h = s.box.x1 - s.box.x0, s.box.y1 - s.box.y0
        x0 = float(rng.uniform(0, max(1.0, width - w)))
        y0 = float(rng.uniform(0, max(1.0, height - h)))
        out.append(Slot(s.group, s.instance, Box(x0, y0, x0 + w, y0 + h)))
    return out


def _run_variant(name: str, gen: Any, judge: Judge, prompts: list[tuple[str, str]],
                 tmp: Path, size: tuple[int, int]) -> dict[str, Any]:
    from indexer.generation.base import MissingConcept
    from indexer.generation.prompt import parse
    from indexer.generation.service import encode_png

    rows: list[dict[str, Any]] = []
    ms: list[float] = []
    for k, (cat, prompt) in enumerate(prompts):
        t0 = time.perf_counter()
        try:
            g = gen.generate(prompt, SEED, size=size)
        except MissingConcept as e:
            rows.append({"prompt": prompt, "category": cat, "missing": e.detail.get("missing")})
            continue
        ms.append((time.perf_counter() - t0) * 1000)
        png = tmp / f"{name}-{k:02d}.png"
        png.write_bytes(encode_png(g.image, f"bench-{name}", k, prompt, SEED))
        verdicts = judge.judge(png, parse(prompt))
        rows.append({
            "prompt": prompt, "category": cat, "attempts": g.attempts,
            "ms": round(ms[-1], 1),
            "verifier": [{"constraint": c.constraint, "kind": c.kind,
                          "satisfied": c.satisfied} for c in g.checks],
            "judge": verdicts,
            "sources": sorted({p.cut for p in g.provenance if p.role == "object"}),
        })
    return {"rows": rows, "ms": ms, **_rates(rows)}


def _rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if "judge" in r]

    def rate(key: str, sel: Callable[[dict[str, Any]], bool] = lambda c: True) -> float | None:
        xs = [c["satisfied"] for r in done for c in r[key] if sel(c)]
        return round(float(np.mean(xs)), 3) if xs else None

    def all_ok(key: str) -> float | None:
        return round(float(np.mean([all(c["satisfied"] for c in r[key]) for r in done])), 3) \
            if done else None

    false_claims = sum(
        1 for r in done for v, j in zip(r["verifier"], r["judge"], strict=False)
        if v["satisfied"] and not j["satisfied"])
    by_cat = {}
    for cat in sorted({r["category"] for r in done}):
        sub = [r for r in done if r["category"] == cat]
        xs = [c["satisfied"] for r in sub for c in r["judge"]]
        by_cat[cat] = round(float(np.mean(xs)), 3) if xs else None
    return {
        "prompts": len(rows), "generated": len(done),
        "missing": [r["prompt"] for r in rows if "missing" in r],
        "constraints": sum(len(r["judge"]) for r in done),
        "judge_satisfaction": rate("judge"),
        "verifier_satisfaction": rate("verifier"),
        "judge_all_satisfied_prompts": all_ok("judge"),
        "verifier_all_satisfied_prompts": all_ok("verifier"),
        "judge_by_category": by_cat,
        "verifier_claims_judge_rejects": false_claims,
    }


def bench_generate(settings: Settings, *, quick: bool = False) -> dict[str, Any]:
    from indexer.context import Glimpse
    from indexer.generation.cpu import CompositionGenerator
    from indexer.generation.library import IndexLibrary

    if not STAMPS.exists():
        return {"skipped": f"{STAMPS} is missing: apt-get install tuxpaint-stamps-default"}
    prompts = PROMPTS[::3] if quick else PROMPTS
    size = (512, 512)
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-gen-") as tmp_s:
        tmp = Path(tmp_s)
        s = settings.model_copy(deep=True)
        s.data_dir = tmp / "index"
        s.model.ocr = "off"
        core = Glimpse(s)
        core.migrate()
        t0 = time.perf_counter()
        files = _index_files()
        _ingest(core, files)
        index_s = time.perf_counter() - t0
        js = s.model_copy(deep=True)
        js.data_dir = tmp / "judge"
        judge = Judge(js, core.model)

        def make(**kw: Any) -> CompositionGenerator:
            return CompositionGenerator(lambda t: IndexLibrary(core, t), core.model,
                                        max_attempts=s.generation.max_attempts, **kw)
        try:
            gen = make()
            t1 = time.perf_counter()
            gen.generate("a dog next to a cat", SEED + 1, size=size)  # warm-up, not counted
            first_ms = (time.perf_counter() - t1) * 1000
            main = _run_variant("cpu", gen, judge, prompts, tmp, size)
            one = _run_variant("one_attempt", CompositionGenerator(
                lambda t: IndexLibrary(core, t), core.model, max_attempts=1), judge,
                prompts, tmp, size)
            rand = _run_variant("random_layout", CompositionGenerator(
                lambda t: IndexLibrary(core, t), core.model, max_attempts=1,
                layout_fn=_random_layout), judge, prompts, tmp, size)
        finally:
            judge.close()
            core.close()
    out: dict[str, Any] = {
        "index": {"images": len(files), "seconds": round(index_s, 1),
                  "sources": "tuxpaint-stamps-default, scikit-image photos, Tux Paint "
                             "starters/templates backdrops"},
        "size": f"{size[0]}x{size[1]}", "cores": os.cpu_count(),
        "first_call_ms": round(first_ms, 1),
    }
    for name, v in (("cpu", main), ("one_attempt", one), ("random_layout", rand)):
        ms = v.pop("ms")
        v["ms_per_image_p50"] = round(statistics.median(ms), 1) if ms else None
        v["ms_per_image_mean"] = round(statistics.fmean(ms), 1) if ms else None
        v["ms_per_image_max"] = round(max(ms), 1) if ms else None
        if name != "cpu":
            v.pop("rows")
        out[name] = v
    return out
