"""When a spatial relation holds between two boxes. One definition, used by the layout's
own self-test, the verifier and the bench's independent judge alike: geometry is not the
part being judged (what is judged is whether the perception finds the objects there)."""

from __future__ import annotations

from indexer.domain import Box


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def relation_holds(kind: str, a: Box, b: Box) -> bool:
    """Does `a <kind> b` hold? left_of/right_of/above/below need the centres apart along that
    axis by more than along the other; `on` needs a resting on b's top (a above, its bottom
    near b's top, mostly over b); `next_to` needs them side by side, close, and level."""
    ax, ay = a.center
    bx, by = b.center
    dx, dy = bx - ax, by - ay
    aw, ah = a.x1 - a.x0, a.y1 - a.y0
    bw, bh = b.x1 - b.x0, b.y1 - b.y0
    if kind == "left_of":
        return dx > 0 and abs(dx) >= abs(dy)
    if kind == "right_of":
        return dx < 0 and abs(dx) >= abs(dy)
    if kind == "above":
        return dy > 0 and abs(dy) >= abs(dx)
    if kind == "below":
        return dy < 0 and abs(dy) >= abs(dx)
    if kind == "on":
        over = _overlap(a.x0, a.x1, b.x0, b.x1) >= 0.5 * min(aw, bw)
        rests = b.y0 - 0.2 * bh <= a.y1 <= b.y0 + 0.5 * bh
        return ay < by and over and rests
    if kind == "next_to":
        gap = max(b.x0 - a.x1, a.x0 - b.x1)
        level = _overlap(a.y0, a.y1, b.y0, b.y1) > 0.3 * min(ah, bh)
        return abs(dx) >= abs(dy) and gap <= 0.6 * max(aw, bw) and level
    raise ValueError(f"unknown relation {kind!r}")


def union(boxes: list[Box]) -> Box:
    return Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes),
               max(b.x1 for b in boxes), max(b.y1 for b in boxes))


def group_relation_holds(kind: str, a: list[Box], b: list[Box]) -> bool:
    """A relation between two groups of instances ("two birds above three horses"): `on`
    needs every a resting on some b; the others hold between the groups' union boxes."""
    if not a or not b:
        return False
    if kind == "on":
        return all(any(relation_holds("on", x, y) for y in b) for x in a)
    return relation_holds(kind, union(a), union(b))
