"""Shot detection on generated videos whose cuts and fades are known to the frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.video import Segment, TruthBoundary, make_synthetic_video
from indexer.media.video import DetectorParams, extract_keyframes, probe_video

FPS = 25
FRAME = 1.0 / FPS


def _mean_rgb(img) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(img.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(0)


def _assert_contiguous(shots, duration: float) -> None:  # type: ignore[no-untyped-def]
    assert shots[0].t_start == pytest.approx(0.0, abs=1e-6)
    for a, b in zip(shots, shots[1:], strict=False):
        assert a.t_end == pytest.approx(b.t_start, abs=1e-6)
        assert a.index + 1 == b.index
    assert shots[-1].t_end == pytest.approx(duration, abs=2 * FRAME)
    for s in shots:
        assert s.t_start - 1e-6 <= s.keyframe_t <= s.t_end + 1e-6


def test_probe_reports_stream_facts(video_cuts: tuple[Path, list[TruthBoundary]]) -> None:
    info = probe_video(video_cuts[0])
    assert (info.width, info.height, info.codec, info.has_video) == (160, 96, "h264", True)
    assert info.fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(5.2, abs=0.05)


def test_hard_cuts_found_within_one_frame(video_cuts: tuple[Path, list[TruthBoundary]]) -> None:
    path, truth = video_cuts
    res = extract_keyframes(path, max_gap_s=100.0)
    cuts = [s.t_start for s in res.shots[1:]]
    assert len(cuts) == len(truth), (cuts, [t.t for t in truth])
    for found, tb in zip(cuts, truth, strict=True):
        assert abs(found - tb.t) <= FRAME + 1e-6, (found, tb.t)
    assert all(s.boundary == "cut" for s in res.shots[1:])
    _assert_contiguous(res.shots, res.info.duration_s)
    assert res.warnings == [] and not res.partial


def test_keyframes_show_their_shot(video_cuts: tuple[Path, list[TruthBoundary]]) -> None:
    res = extract_keyframes(video_cuts[0], max_gap_s=100.0, keyframe_max_side=64)
    yellow = _mean_rgb(res.shots[2].image)  # the solid yellow shot
    assert np.abs(yellow - np.array([230, 200, 40])).max() < 20
    assert all(max(s.image.size) <= 64 for s in res.shots)


def test_dissolve_and_fade_through_black_found(
    video_fade: tuple[Path, list[TruthBoundary]],
) -> None:
    path, truth = video_fade
    res = extract_keyframes(path, max_gap_s=100.0)
    found = res.shots[1:]
    assert len(found) == 2, [(s.t_start, s.boundary) for s in res.shots]
    for shot, tb in zip(found, truth, strict=True):
        assert tb.t0 - FRAME <= shot.t_start <= tb.t1 + FRAME, (shot.t_start, tb)
        assert shot.boundary == "fade"
        # keyframe taken once the picture settled, not a half-blended frame
        assert shot.keyframe_t >= tb.t1 - 3 * FRAME
    blue = _mean_rgb(found[0].image)
    assert np.abs(blue - np.array([40, 70, 220])).max() < 35


def test_long_static_shot_is_split_at_max_gap(video_static: Path) -> None:
    res = extract_keyframes(video_static, max_gap_s=2.0)
    static = [s for s in res.shots if s.t_start < 7.0 - FRAME]
    assert len(static) >= 4  # 7 s of one shot with a keyframe at least every 2 s
    assert all(s.boundary == "gap" for s in static[1:])
    for a, b in zip(static, static[1:], strict=False):
        assert b.keyframe_t - a.keyframe_t <= 2.0 + FRAME
    assert res.shots[-1].boundary == "cut"
    assert res.shots[-1].t_start == pytest.approx(7.0, abs=FRAME + 1e-6)
    # without the gap rule the same video is just two shots
    assert len(extract_keyframes(video_static, max_gap_s=100.0).shots) == 2


def test_near_duplicate_keyframe_merged(video_dir: Path) -> None:
    """A -> 0.2 s flash of B -> A again: one shot, not three."""
    a = Segment("noise", 2.0, (220, 40, 40), seed=9, static=True)
    path = video_dir / "dup.mp4"
    make_synthetic_video(path, [a, Segment("solid", 0.2, (40, 70, 220)), a])
    merged = extract_keyframes(path, max_gap_s=100.0)
    assert len(merged.shots) == 1
    assert merged.shots[0].t_end == pytest.approx(4.2, abs=2 * FRAME)
    # the detector did see both cuts: with no minimum shot length nothing is merged
    raw = extract_keyframes(path, max_gap_s=100.0, params=DetectorParams(min_shot_s=0.0))
    assert len(raw.shots) == 3


def test_frame_cap_respected_with_warning(
    video_many_shots: tuple[Path, list[TruthBoundary]],
) -> None:
    path, truth = video_many_shots
    full = extract_keyframes(path, max_gap_s=100.0)
    assert len(full.shots) == len(truth) + 1
    capped = extract_keyframes(path, max_gap_s=100.0, max_frames=5)
    assert len(capped.shots) == 5
    assert any("frame cap" in w and "12 detected shots" in w for w in capped.warnings)
    _assert_contiguous(capped.shots, capped.info.duration_s)


def test_very_long_video_is_sampled(video_many_shots: tuple[Path, list[TruthBoundary]]) -> None:
    res = extract_keyframes(video_many_shots[0], max_frames=4, max_full_decode_s=1.0)
    assert len(res.shots) == 4
    assert {s.boundary for s in res.shots[1:]} == {"sample"}
    assert any(w.startswith("sampled 4 frames") for w in res.warnings)
    _assert_contiguous(res.shots, res.info.duration_s)


def test_soft_timeout_returns_partial_prefix(
    video_many_shots: tuple[Path, list[TruthBoundary]],
) -> None:
    res = extract_keyframes(video_many_shots[0], timeout_s=1e-9)
    assert res.partial
    assert any("time limit" in w for w in res.warnings)
    assert 1 <= len(res.shots) < 13
    assert res.shots[-1].t_end < res.info.duration_s


def test_fast_decode_keeps_cuts_within_tenth_of_second(
    video_cuts: tuple[Path, list[TruthBoundary]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import indexer.media.video.keyframes as video  # where extract_keyframes reads it

    path, truth = video_cuts
    assert extract_keyframes(path, max_gap_s=100.0).frame_exact  # small video: exact by default
    monkeypatch.setattr(video, "FAST_DECODE_MIN_PIXELS", 0)  # "HD and up" now means everything
    res = extract_keyframes(path, max_gap_s=100.0)
    assert not res.frame_exact
    cuts = [s.t_start for s in res.shots[1:]]
    assert len(cuts) == len(truth)
    for found, tb in zip(cuts, truth, strict=True):
        assert abs(found - tb.t) <= 0.1 + 1e-6


def test_lookup_table_histogram_matches_direct_computation() -> None:
    from indexer.media.video import _hist_dist, _signature, _signature_exact

    rng = np.random.default_rng(3)
    for _ in range(5):
        shape = (36, 64)
        y = rng.integers(16, 236, shape, dtype=np.uint8)
        u = rng.integers(16, 240, shape, dtype=np.uint8)
        v = rng.integers(16, 240, shape, dtype=np.uint8)
        fast, exact = _signature(y, u, v), _signature_exact(y, u, v)
        assert fast.hist.sum() == pytest.approx(exact.hist.sum(), rel=0.05)
        assert _hist_dist(fast.hist, exact.hist) < 0.05
    flat = np.full(shape, 128, np.uint8)
    red = _signature(np.full(shape, 81, np.uint8), np.full(shape, 90, np.uint8),
                     np.full(shape, 240, np.uint8))
    grey = _signature(flat, flat, flat)
    assert _hist_dist(red.hist, grey.hist) > 0.9  # saturated red vs neutral grey
