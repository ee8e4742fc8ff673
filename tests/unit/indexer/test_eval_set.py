"""The tuxpaint evaluation set: deterministic, halves disjoint, absent concepts really absent
from the indexed halves, and the no-good-match threshold search (Debian's
tuxpaint-stamps-default, installed by scripts/test.sh)."""

from __future__ import annotations

from bench import tuxpaint
from bench.quality import _ap_p10, best_threshold


def test_manifest_is_deterministic_and_halves_are_disjoint() -> None:
    a, b = tuxpaint.build(), tuxpaint.build()
    assert a == b
    tune, test = tuxpaint.items(a, "tune"), tuxpaint.items(a, "test")
    assert len(tune) >= 150 and len(test) >= 150
    assert not {i.path for i in tune} & {i.path for i in test}
    indexed = {i.category for i in tune} | {i.category for i in test}
    assert not indexed & set(a["absent_categories"])
    assert {i.category for i in tune} == {i.category for i in test}
    for split in ("tune", "test"):
        qs = tuxpaint.queries(a, split)
        assert {q.category for q in qs if q.category} == indexed
        assert sum(q.category is None for q in qs) >= 8


def test_metrics_and_threshold_search() -> None:
    p10, ap = _ap_p10(["a", "x", "b"], {"a", "b"})
    assert p10 == 0.2 and abs(ap - (1 + 2 / 3) / 2) < 1e-9
    # separable: the threshold falls between the two groups
    t = best_threshold([0.1, 0.2, 0.25], [0.5, 0.6, 0.9])
    assert 0.25 < t < 0.5
