"""The values the video code returns and raises, and its limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image

from indexer.errors import CorruptMedia

log = logging.getLogger(__name__)


BoundaryKind = Literal["start", "cut", "fade", "gap", "sample"]

# 8K UHD, either orientation.
DEFAULT_MAX_DIMS: tuple[int, int] = (7680, 4320)
# `fast_decode=None` skips non-reference frames from this frame area up (or above 40 fps).
FAST_DECODE_MIN_PIXELS = 1280 * 720


class DecodeTimeout(CorruptMedia):
    """Decoding ran past its time limit and nothing usable came back."""

    code = "decode_timeout"






@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    has_video: bool = True
    n_frames: int | None = None
    container: str = ""


@dataclass
class Shot:
    """One shot (or sub-shot of a long static shot) and the keyframe that stands for it."""

    index: int
    t_start: float
    t_end: float
    keyframe_t: float
    image: Image.Image
    boundary: BoundaryKind = "cut"  # how this shot began
    boundary_score: float = 1.0  # strength of that boundary (0 for gap splits / samples)

    @property
    def duration(self) -> float:
        return max(0.0, self.t_end - self.t_start)


@dataclass
class KeyframeResult:
    shots: list[Shot]
    warnings: list[str]
    info: VideoInfo
    partial: bool = False  # stopped early (time limit, decode error); shots cover a prefix
    frame_exact: bool = True  # False when non-reference frames were skipped (fast_decode)


@dataclass
class Moment:
    t_start: float
    t_end: float
    score: float
    shot_indices: list[int] = field(default_factory=list)
