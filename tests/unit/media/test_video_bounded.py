"""Decoding in a child process under a hard time limit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import indexer.media.video.keyframes as video  # where the scan lives (patched below)
from bench.video import TruthBoundary
from indexer.errors import UnsupportedMedia
from indexer.media.video import DecodeTimeout, extract_keyframes, extract_keyframes_bounded


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_bounded_matches_in_process(video_cuts: tuple[Path, list[TruthBoundary]]) -> None:
    path = video_cuts[0]
    local = extract_keyframes(path, max_gap_s=100.0)
    bounded = extract_keyframes_bounded(path, max_gap_s=100.0, timeout_s=60.0)
    assert [(s.t_start, s.t_end, s.boundary) for s in bounded.shots] == [
        (s.t_start, s.t_end, s.boundary) for s in local.shots
    ]
    assert bounded.info == local.info
    assert not bounded.partial
    for s in bounded.shots:  # images crossed the process boundary as JPEG and came back
        assert s.image.mode == "RGB"
        assert s.image.size == local.shots[s.index].image.size


def test_bounded_kills_child_past_timeout(video_cuts: tuple[Path, list[TruthBoundary]]) -> None:
    t0 = time.monotonic()
    with pytest.raises(DecodeTimeout) as err:
        extract_keyframes_bounded(video_cuts[0], timeout_s=0.01)
    assert time.monotonic() - t0 < 10.0
    assert err.value.status == 422  # a CorruptMedia to the HTTP edge
    assert _gone(int(err.value.detail["pid"]))  # type: ignore[call-overload]


def test_bounded_relays_typed_errors(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp4"
    p.write_text("not a video at all\n" * 40)
    with pytest.raises(UnsupportedMedia):
        extract_keyframes_bounded(p, timeout_s=60.0)


def test_hung_decoder_killed_and_partial_returned(
    video_many_shots: tuple[Path, list[TruthBoundary]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoder sends some shots and then hangs: kill it, keep what arrived."""
    real_scan = video._scan

    def hanging_scan(*args, **kwargs):  # type: ignore[no-untyped-def]
        for item in real_scan(*args, **kwargs):
            if isinstance(item, video._ScanEnd):
                time.sleep(3600)  # stuck before reporting the end
            yield item

    monkeypatch.setattr(video, "_scan", hanging_scan)
    t0 = time.monotonic()
    res = extract_keyframes_bounded(
        video_many_shots[0], timeout_s=4.0, max_gap_s=100.0, start_method="fork"
    )
    assert time.monotonic() - t0 < 10.0
    assert res.partial
    assert any("stopped at the time limit" in w for w in res.warnings), res.warnings
    assert 2 <= len(res.shots) <= 13
