"""Fixtures for media tests. Video fixtures are prefixed `video_` (others may add image ones)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.video import Segment, TruthBoundary, make_synthetic_video

os.environ.setdefault("OMP_NUM_THREADS", "1")

RED, GREEN, BLUE, YELLOW, GREY = (220, 40, 40), (40, 200, 60), (40, 70, 220), (230, 200, 40), (
    120, 120, 120)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def video_cuts(video_dir: Path) -> tuple[Path, list[TruthBoundary]]:
    """Four shots joined by hard cuts at known frames (25 fps)."""
    segs = [
        Segment("shapes", 1.6, RED, seed=1),
        Segment("noise", 1.2, BLUE, seed=2),
        Segment("solid", 1.0, YELLOW, seed=3),
        Segment("gradient", 1.4, GREEN, seed=4),
    ]
    path = video_dir / "cuts.mp4"
    return path, make_synthetic_video(path, segs)


@pytest.fixture(scope="session")
def video_fade(video_dir: Path) -> tuple[Path, list[TruthBoundary]]:
    """A 1.2 s dissolve, then a fade through black."""
    segs = [
        Segment("noise", 2.0, RED, seed=5),
        Segment("shapes", 2.0, BLUE, seed=6, transition="dissolve", transition_s=1.2),
        Segment("gradient", 2.0, YELLOW, seed=7, transition="fade_black", transition_s=1.0),
    ]
    path = video_dir / "fade.mp4"
    return path, make_synthetic_video(path, segs)


@pytest.fixture(scope="session")
def video_static(video_dir: Path) -> Path:
    """One static shot of 7 s (longer than a 2 s max gap), then a cut."""
    segs = [Segment("noise", 7.0, GREY, seed=8, static=True), Segment("solid", 1.0, RED)]
    path = video_dir / "static.mp4"
    make_synthetic_video(path, segs)
    return path


@pytest.fixture(scope="session")
def video_many_shots(video_dir: Path) -> tuple[Path, list[TruthBoundary]]:
    """Twelve 0.6 s shots: more than a small frame cap allows."""
    palette = [RED, GREEN, BLUE, YELLOW, GREY, (200, 60, 200)]
    segs = [Segment(("solid", "noise")[i % 2], 0.6, palette[i % len(palette)], seed=20 + i)
            for i in range(12)]
    path = video_dir / "many.mp4"
    return path, make_synthetic_video(path, segs)
