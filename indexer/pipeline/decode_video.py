"""Videos: keyframes at shot boundaries (cuts and fades), at most every `max_gap_s` of a
static shot, near-duplicates dropped — each keyframe a view covering its shot's time range.
Decoding runs in a bounded child process so one pathological file cannot hang a worker."""

from __future__ import annotations

from pathlib import Path

from indexer.domain import ViewInput
from indexer.media.video import extract_keyframes_bounded, probe_video
from indexer.pipeline.decode import Decoded, DecodedView
from indexer.settings import Settings

MAX_GAP_S = 10.0


def validate_video(path: Path, settings: Settings) -> tuple[int, int]:
    """Header checks at upload time: a real video stream, a sane size. (width, height)"""
    info = probe_video(path)
    return info.width, info.height


def decode_video(media_id: str, path: Path, settings: Settings) -> Decoded:
    lim = settings.limits
    res = extract_keyframes_bounded(path, max_frames=lim.max_video_frames, max_gap_s=MAX_GAP_S,
                                    timeout_s=lim.video_decode_timeout_s)
    views = [
        DecodedView(ViewInput(view_id=f"{media_id}:{i}", image=s.image, kind="frame",
                              t_start=s.t_start, t_end=s.t_end), i, store_image=True)
        for i, s in enumerate(res.shots)
    ]
    return Decoded(views, warnings=list(res.warnings), duration_s=res.info.duration_s,
                   width=res.info.width, height=res.info.height)
