from __future__ import annotations

import pytest

from indexer.domain import Box
from indexer.generation.geometry import group_relation_holds, relation_holds

L = Box(10, 100, 60, 150)
R = Box(200, 100, 250, 150)
TOPB = Box(10, 0, 60, 40)
BASE = Box(0, 60, 100, 150)
ON = Box(30, 20, 70, 66)


@pytest.mark.parametrize(("kind", "a", "b", "want"), [
    ("left_of", L, R, True), ("left_of", R, L, False), ("right_of", R, L, True),
    ("above", TOPB, L, True), ("below", L, TOPB, True), ("above", L, TOPB, False),
    ("on", ON, BASE, True), ("on", TOPB, BASE, False),  # floating 20 px above is not on
    ("on", BASE, ON, False), ("next_to", L, Box(70, 100, 120, 150), True),
    ("next_to", L, R, False),  # 140 px apart is beside, not next to
    ("left_of", Box(0, 0, 10, 10), Box(20, 200, 30, 210), False),  # mostly above
])
def test_relation_holds(kind: str, a: Box, b: Box, want: bool) -> None:
    assert relation_holds(kind, a, b) is want


def test_groups() -> None:
    assert group_relation_holds("left_of", [L, Box(70, 100, 120, 150)], [R])
    assert not group_relation_holds("left_of", [L], [])
    assert not group_relation_holds("on", [ON, TOPB], [BASE])
