"""Where each instance goes: boxes on the canvas that satisfy the plan's relations and counts.

Groups (one per object phrase) joined by above/below/on share a column and are stacked in
it; columns are ordered left to right by a topological sort of the left/right/next-to
relations (prompt order among equals). A group's instances fill its cell side by side (two
rows from 4 up). Objects stand on a ground line; `a on b` puts a's bottom on b's top. Sizes
and offsets jitter with the seed. Every relation is checked on the boxes before they are
returned, so a layout that cannot hold is refused here, not discovered later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from indexer.domain import Box
from indexer.errors import InvalidRequest
from indexer.generation.geometry import group_relation_holds
from indexer.generation.prompt import Plan

TOP, GROUND = 0.06, 0.94  # share of the height: top margin and the ground line
SIDE_MARGIN = 0.04


@dataclass
class Slot:
    group: int
    instance: int
    box: Box


def _topo(nodes: list[int], edges: set[tuple[int, int]]) -> list[int] | None:
    """Stable topological order (smallest index first among the ready); None on a cycle."""
    indeg = {n: 0 for n in nodes}
    for _, b in edges:
        indeg[b] += 1
    ready = sorted(n for n in nodes if indeg[n] == 0)
    out: list[int] = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for a, b in sorted(edges):
            if a == n:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
                    ready.sort()
    return out if len(out) == len(nodes) else None


def _levels(members: list[int], down: set[tuple[int, int]]) -> dict[int, int]:
    """Level 0 at the top: longest path from any group with nothing above it."""
    level = {m: 0 for m in members}
    for _ in members:
        for a, b in down:
            if a in level and b in level and level[b] < level[a] + 1:
                level[b] = level[a] + 1
    return level


def layout(plan: Plan, aspects: list[list[float]], width: int, height: int,
           rng: np.random.Generator, *, fill: float = 1.0) -> list[Slot]:
    """Boxes for every instance. aspects[g][i] is instance i of group g's width/height;
    `fill` (0.3..1) shrinks every instance in its slot (a scene shows more backdrop)."""
    fill = min(1.0, max(0.3, fill))
    n = len(plan.objects)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    down: set[tuple[int, int]] = set()  # (upper, lower)
    right: set[tuple[int, int]] = set()  # (left, right)
    on_pairs: list[tuple[int, int]] = []
    for r in plan.relations:
        a, b = r.subject, r.object
        if r.kind in ("above", "on"):
            down.add((a, b))
            parent[find(a)] = find(b)
            if r.kind == "on":
                on_pairs.append((a, b))
        elif r.kind == "below":
            down.add((b, a))
            parent[find(a)] = find(b)
        elif r.kind in ("left_of", "next_to"):
            right.add((a, b))
        elif r.kind == "right_of":
            right.add((b, a))
    columns = sorted({find(g) for g in range(n)}, key=lambda c: min(
        g for g in range(n) if find(g) == c))
    col_edges = {(find(a), find(b)) for a, b in right}
    if any(a == b for a, b in col_edges):
        raise InvalidRequest("the prompt asks for two objects to be both stacked and side by "
                             "side; that layout cannot be drawn")
    order = _topo(columns, col_edges)
    if order is None:
        raise InvalidRequest("the left/right relations of the prompt contradict each other")
    # column widths in proportion to the widest row of instances they hold
    col_rows: dict[int, dict[int, list[int]]] = {}
    for c in order:
        members = [g for g in range(n) if find(g) == c]
        lv = _levels(members, {e for e in down if find(e[0]) == c})
        rows: dict[int, list[int]] = {}
        for g in members:
            rows.setdefault(lv[g], []).append(g)
        col_rows[c] = rows

    def per_row(g: int) -> int:
        k = plan.objects[g].count
        return k if k <= 3 else math.ceil(k / 2)

    weights = [max(sum(per_row(g) for g in row) for row in col_rows[c].values())
               for c in order]
    usable = width * (1 - 2 * SIDE_MARGIN)
    x = width * SIDE_MARGIN
    slots: dict[tuple[int, int], Box] = {}
    for c, wgt in zip(order, weights, strict=True):
        cw = usable * wgt / sum(weights)
        rows = col_rows[c]
        nrows = max(rows) + 1
        rh = height * (GROUND - TOP) / nrows
        for lvl in sorted(rows, reverse=True):  # bottom row first: `on` needs what is below
            groups = rows[lvl]
            y1 = height * TOP + rh * (lvl + 1)
            gx = x
            total = sum(per_row(g) for g in groups)
            for g in groups:
                gw = cw * per_row(g) / total
                _fill_group(plan, g, aspects[g], Box(gx, y1 - rh, gx + gw, y1), rng, slots,
                            fill)
                gx += gw
        x += cw
    for a, b in on_pairs:
        _rest_on(slots, plan, a, b, rng)
    for r in plan.relations:
        if r.kind == "next_to":
            _pull_together(slots, plan, r.subject, r.object, on_pairs)
    out = [Slot(g, i, slots[(g, i)]) for g in range(n) for i in range(plan.objects[g].count)]
    _self_check(plan, out)
    return out


def _fill_group(plan: Plan, g: int, aspects: list[float], cell: Box,
                rng: np.random.Generator, slots: dict[tuple[int, int], Box],
                fill: float) -> None:
    k = plan.objects[g].count
    rows = 1 if k <= 3 else 2
    cols = math.ceil(k / rows)
    sw = (cell.x1 - cell.x0) / cols
    sh = (cell.y1 - cell.y0) / rows
    for i in range(k):
        r, c = divmod(i, cols)
        if rows == 2 and r == 1 and k % 2:  # an odd last row is centred
            c += 0.5  # type: ignore[assignment]
        scale = float(rng.uniform(0.76, 0.9)) * fill
        asp = max(0.2, min(5.0, aspects[i % len(aspects)]))
        w = min(sw * scale, sh * scale * asp)
        h = w / asp
        slack = sw - w
        x0 = cell.x0 + c * sw + slack / 2 + float(rng.uniform(-0.25, 0.25)) * slack
        y1 = cell.y0 + (r + 1) * sh - sh * 0.02  # stands on the slot's floor
        slots[(g, i)] = Box(x0, y1 - h, x0 + w, y1)


def _rest_on(slots: dict[tuple[int, int], Box], plan: Plan, a: int, b: int,
             rng: np.random.Generator) -> None:
    """Move every instance of `a` down onto the top of b's instances (centred over them)."""
    below = [slots[(b, i)] for i in range(plan.objects[b].count)]
    for i in range(plan.objects[a].count):
        base = below[i % len(below)]
        cur = slots[(a, i)]
        w, h = cur.x1 - cur.x0, cur.y1 - cur.y0
        bw = base.x1 - base.x0
        if w > 0.8 * bw:  # shrink to fit on what it stands on
            f = 0.8 * bw / w
            w, h = w * f, h * f
        cx = (base.x0 + base.x1) / 2 + float(rng.uniform(-0.08, 0.08)) * bw
        y1 = base.y0 + 0.1 * (base.y1 - base.y0)
        y0 = max(0.0, y1 - h)
        slots[(a, i)] = Box(cx - w / 2, y0, cx + w / 2, y0 + h)


def _pull_together(slots: dict[tuple[int, int], Box], plan: Plan, a: int, b: int,
                   on_pairs: list[tuple[int, int]]) -> None:
    """`a next to b`: slide a's instances (and whatever rests on them) sideways until the
    gap to b is small."""
    sa = [slots[(a, i)] for i in range(plan.objects[a].count)]
    sb = [slots[(b, i)] for i in range(plan.objects[b].count)]
    ax1, bx0 = max(x.x1 for x in sa), min(x.x0 for x in sb)
    ax0, bx1 = min(x.x0 for x in sa), max(x.x1 for x in sb)
    width = max(max(x.x1 - x.x0 for x in sa), max(x.x1 - x.x0 for x in sb))
    target = 0.12 * width
    if bx0 >= ax1:  # a stands left of b
        dx = max(0.0, (bx0 - ax1) - target)
    elif ax0 >= bx1:
        dx = -max(0.0, (ax0 - bx1) - target)
    else:
        return
    moving = {a}
    for _ in on_pairs:
        moving |= {top for top, base in on_pairs if base in moving}
    for g in moving:
        for i in range(plan.objects[g].count):
            x = slots[(g, i)]
            slots[(g, i)] = Box(x.x0 + dx, x.y0, x.x1 + dx, x.y1)


def _self_check(plan: Plan, slots: list[Slot]) -> None:
    by_group: dict[int, list[Box]] = {}
    for s in slots:
        by_group.setdefault(s.group, []).append(s.box)
    for r in plan.relations:
        if not group_relation_holds(r.kind, by_group[r.subject], by_group[r.object]):
            raise InvalidRequest(f"no layout found for '{r.words(plan)}' together with the "
                                 "other relations")
