"""The `objects` bench section: its composites are what they claim (truth boxes are the pasted
alpha, counts and relations geometrically true) and a quick run reports sane figures.
Needs Debian's tuxpaint-stamps-default (scripts/test.sh installs it)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from bench import objects as ob
from indexer.domain import Box, DetectedObject
from indexer.reasoning.evidence import holds, is_on, relation

pytestmark = pytest.mark.skipif(
    not ob.stamps_root().is_dir(),
    reason=f"{ob.stamps_root()} missing: apt-get install tuxpaint-stamps-default")

MAGENTA = (255, 0, 255)


def _magenta(rng: random.Random) -> tuple[Image.Image, str]:
    return Image.new("RGB", (ob.W, ob.H), MAGENTA), "magenta"


def test_truth_boxes_are_the_pasted_alpha(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a flat magenta canvas: outside a truth box every pixel is at most half blended
    # (alpha < 128); each edge of the box holds a changed pixel (the box is tight)
    monkeypatch.setattr(ob, "_canvas", _magenta)
    comps = ob.build_composites(8, 0, 0, seed=3)
    checked = 0
    for c in comps:
        if len(c.truths) != 1:
            continue
        b = c.truths[0].box
        x0, y0, x1, y1 = int(b.x0), int(b.y0), int(b.x1), int(b.y1)
        assert 0 <= x0 < x1 <= ob.W and 0 <= y0 < y1 <= ob.H
        diff = np.abs(np.asarray(c.image, np.int16) - np.array(MAGENTA, np.int16)).max(-1)
        outside = diff.copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() < 130, c.truths[0]
        for edge in (diff[y0, x0:x1], diff[y1 - 1, x0:x1], diff[y0:y1, x0], diff[y0:y1, x1 - 1]):
            assert edge.max() > 0, c.truths[0]
        checked += 1
    assert checked >= 2


def test_counts_and_relations_are_true() -> None:
    comps = ob.build_composites(3, 2, 3, seed=7)
    files = ob.stamp_files()
    counts = [c for c in comps if c.kind == "count"]
    assert sorted(c.extra["n"] for c in counts) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    for c in counts:
        assert len(c.truths) == c.extra["n"]
        assert len({t.label for t in c.truths}) == 1
        assert all(t.stamp in {f.name for f in files[t.label]} for t in c.truths)
        for i, a in enumerate(c.truths):
            for b in c.truths[i + 1:]:
                assert ob._apart(a.box, b.box, gap=0), (a, b)  # instances do not overlap
    rels = [c for c in comps if c.kind == "relation"]
    assert sorted({c.relation for c in rels}) == sorted(ob.RELATIONS)  # type: ignore[type-var]
    for c in rels:
        a, b = c.truths
        assert c.relation is not None and a.label != b.label
        assert holds(c.relation, a.box, b.box)
        if c.relation == "on":
            assert is_on(a.box, b.box) and a.box.area < b.box.area
        else:
            assert relation(a.box, b.box) == c.relation and ob._apart(a.box, b.box, gap=0)
            # and it is not a borderline case: the other axis is clearly smaller
            dx = abs(a.box.center[0] - b.box.center[0])
            dy = abs(a.box.center[1] - b.box.center[1])
            assert (dx >= 1.5 * dy) if c.relation in ("left of", "right of") else dy >= 1.5 * dx
    assert ob.build_composites(3, 2, 3, seed=7)[0].truths == comps[0].truths  # seeded


def test_metrics_on_perfect_and_empty_predictions() -> None:
    comps = ob.build_composites(4, 1, 1, seed=5)
    truth = [[DetectedObject(t.label, 0.9, t.box, "truth") for t in c.truths] for c in comps]
    none: list[list[DetectedObject]] = [[] for _ in comps]
    classes = sorted(ob.stamp_files())
    perfect = ob._evaluate(truth, [1.0] * len(comps), comps, classes)
    empty = ob._evaluate(none, [1.0] * len(comps), comps, classes)
    assert perfect["map50"] == 1.0 and perfect["count"]["exact"] == 1.0
    assert perfect["relations"]["accuracy"] == 1.0
    assert empty["map50"] == 0.0 and empty["count"]["exact"] == 0.0
    assert empty["relations"]["accuracy"] == 0.0
    # a box shifted by half its width no longer matches (IoU 1/3 < 0.5)
    shifted = [[DetectedObject(o.label, o.score, Box(o.box.x0 + (o.box.x1 - o.box.x0) / 2,
                                                     o.box.y0, o.box.x1 + (o.box.x1 - o.box.x0)
                                                     / 2, o.box.y1), "t") for o in p]
               for p in truth]
    assert ob._evaluate(shifted, [1.0] * len(comps), comps, classes)["map50"] == 0.0
    assert ob.average_precision([(0.9, True), (0.8, False), (0.7, True)], 2) == \
        pytest.approx(0.5 + 0.5 * 2 / 3)


def test_tiled_boxes_come_back_in_image_coordinates_once() -> None:
    # a stand-in detector that boxes the red ("cup") and green ("dog") pixels of whatever
    # image it is given, scoring a box that touches the image's edge lower (cut by a tile):
    # each square is found by the whole-image pass and by every tile that holds it, in each
    # one's own coordinates; tiled() must move tile boxes back and merge them into one each
    def colours(im: Image.Image) -> list[DetectedObject]:
        a = np.asarray(im.convert("RGB")).astype(int)
        h, w = a.shape[:2]
        out = []
        for label, ch in (("cup", 0), ("dog", 1)):
            ys, xs = np.nonzero(a[:, :, ch] > 128)
            if len(xs):
                b = Box(float(xs.min()), float(ys.min()), float(xs.max() + 1),
                        float(ys.max() + 1))
                cut = b.x0 == 0 or b.y0 == 0 or b.x1 == w or b.y1 == h
                out.append(DetectedObject(label, 0.5 if cut else 0.9, b))
        return out

    im = Image.new("RGB", (640, 480))
    im.paste((255, 0, 0), (290, 220, 330, 260))  # inside all four overlapping tiles
    im.paste((0, 255, 0), (560, 400, 600, 440))  # in the bottom-right tile only
    calls: list[tuple[int, int]] = []

    def spy(x: Image.Image) -> list[DetectedObject]:
        calls.append(x.size)
        return colours(x)

    out = ob.tiled(spy)(im)
    assert len(calls) == 5 and calls[0] == (640, 480)  # the whole image, then 4 tiles
    assert all(w < 640 and h < 480 for w, h in calls[1:])
    assert sorted((o.label, o.box.as_list()) for o in out) == [
        ("cup", [290.0, 220.0, 330.0, 260.0]), ("dog", [560.0, 400.0, 600.0, 440.0])]


def test_quick_section_reports_sane_figures() -> None:
    from indexer.models.cpu.objects import ObjectsUnavailable, prepare
    from indexer.settings import Settings

    try:
        prepare(fetch=False)
    except ObjectsUnavailable as e:
        pytest.skip(f"object detector not prepared ({e}): python -m indexer.models.cpu.objects")
    out = ob.bench_objects(Settings(), quick=True)
    assert out["composites"]["detect"] == 6 and out["composites"]["count"] == 6
    assert out["composites"]["relation"] == len(ob.RELATIONS)
    for key in ("detector", "baseline_person_only"):
        r = out[key]
        assert 0.0 <= r["map50"] <= 1.0 and all(0.0 <= v <= 1.0 for v in r["ap50"].values())
        assert 0.0 <= r["count"]["exact"] <= 1.0
        assert set(r["count"]["by_n"]) == {"1", "2", "3", "4", "5", "6"}
        assert 0.0 <= r["relations"]["accuracy"] <= 1.0
        assert r["ms_per_image"]["mean"] > 0
    # the person-only detectors know no other class
    assert all(v == 0.0 for k, v in out["baseline_person_only"]["ap50"].items()
               if k != "person")
    assert out["detector"]["model"] == "centernet"
    for v in out["bad_inputs"]["detector"].values():
        assert v.get("objects") == 0, v
    ing = out["ingest"]
    assert ing["images_per_s_off"] > 0 and ing["images_per_s_on"] > 0
    assert len(ing["objects_off"]) == len(ing["objects_on"]) == 3
    assert set(out["goals"]) >= {"count_exact_ge_0.8", "relation_ge_0.9", "detector_le_60ms",
                                 "ingest_drop_le_15pct"}
    fu = out["followups"]
    assert fu["closer_side"] == 640 and fu["index_side"] == 416
    for mode in ("index_boxes_only", "closer_look"):
        r = fu[mode]
        # 6 count composites ask once, 5 relation composites twice (true and opposite)
        assert r["questions"] == 6 + 2 * len(ob.RELATIONS)
        assert 0.0 <= r["count_exact"] <= 1.0 and 0.0 <= r["relations"] <= 1.0
        assert set(r["count_by_n"]) == {"1", "2", "3", "4", "5", "6"}
