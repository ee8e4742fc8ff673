"""Layouts satisfy every relation and count of the plan, stay on the canvas, and repeat with
the seed."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.errors import InvalidRequest
from indexer.generation.geometry import group_relation_holds
from indexer.generation.layout import layout
from indexer.generation.prompt import parse

PROMPTS = [
    "a cat", "three apples", "four dogs", "a cat left of a dog", "a cat right of a dog",
    "a bird above a horse", "a ball below a table lamp", "a cat on a car",
    "a cat next to a dog", "two apples next to a teapot", "a cat left of a dog left of a horse",
    "a bird above a horse left of a cow", "two cats on a sofa", "a cat and a dog and a cow",
    "three birds above two horses", "a cup on a table next to a chair",
]


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_every_relation_holds_and_boxes_fit(prompt: str, seed: int) -> None:
    plan = parse(prompt)
    aspects = [[1.3, 0.8, 1.0, 1.6][: o.count] or [1.0] for o in plan.objects]
    slots = layout(plan, aspects, 512, 384, np.random.default_rng(seed))
    assert [sum(s.group == g for s in slots) for g in range(len(plan.objects))] == [
        o.count for o in plan.objects]
    for s in slots:
        assert 0 <= s.box.x0 < s.box.x1 <= 512 and 0 <= s.box.y0 < s.box.y1 <= 384
        assert s.box.x1 - s.box.x0 >= 20 and s.box.y1 - s.box.y0 >= 20
    for r in plan.relations:
        a = [s.box for s in slots if s.group == r.subject]
        b = [s.box for s in slots if s.group == r.object]
        assert group_relation_holds(r.kind, a, b), (prompt, r.kind, a, b)
    # instances not related by `on` do not overlap much
    plain = [s for s in slots if not any(r.kind == "on" and s.group in (r.subject, r.object)
                                         for r in plan.relations)]
    for i, a in enumerate(plain):
        for b in plain[i + 1:]:
            ix = max(0.0, min(a.box.x1, b.box.x1) - max(a.box.x0, b.box.x0))
            iy = max(0.0, min(a.box.y1, b.box.y1) - max(a.box.y0, b.box.y0))
            assert ix * iy <= 0.05 * min(a.box.area, b.box.area)


def test_same_seed_same_layout_other_seed_differs() -> None:
    plan = parse("two cats left of a dog")
    asp = [[1.2, 1.2], [1.0]]
    a = layout(plan, asp, 512, 512, np.random.default_rng(3))
    b = layout(plan, asp, 512, 512, np.random.default_rng(3))
    c = layout(plan, asp, 512, 512, np.random.default_rng(4))
    assert [s.box for s in a] == [s.box for s in b]
    assert [s.box for s in a] != [s.box for s in c]


def test_stacked_and_side_by_side_is_refused() -> None:
    plan = parse("a cat above a dog and the cat left of the dog")
    with pytest.raises(InvalidRequest):
        layout(plan, [[1.0], [1.0]], 512, 512, np.random.default_rng(0))


@pytest.mark.parametrize("prompt", PROMPTS)
def test_relations_hold_when_instances_are_shrunk_for_a_scene(prompt: str) -> None:
    plan = parse(prompt)
    aspects = [[1.3, 0.8, 1.0, 1.6][: o.count] or [1.0] for o in plan.objects]
    for fill in (0.7, 0.45):
        slots = layout(plan, aspects, 512, 512, np.random.default_rng(5), fill=fill)
        for r in plan.relations:
            a = [s.box for s in slots if s.group == r.subject]
            b = [s.box for s in slots if s.group == r.object]
            assert group_relation_holds(r.kind, a, b), (prompt, fill, r.kind)
