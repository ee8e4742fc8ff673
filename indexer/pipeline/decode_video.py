"""Videos: keyframes at shot boundaries (cuts and fades), at most every `max_gap_s` of a
static shot, near-duplicates dropped — each keyframe a view covering its shot's time range.
Decoding runs in a bounded child process so one pathological file cannot hang a worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.domain import ViewEncoding, ViewInput
from indexer.media.video import extract_keyframes_bounded, probe_video, summarize_shots
from indexer.models.base import l2_normalize
from indexer.pipeline.decoded import Decoded, DecodedView
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
                              t_start=s.t_start, t_end=s.t_end), i, store_image=True,
                    extra={"boundary": s.boundary,
                           "boundary_score": round(float(s.boundary_score), 4)})
        for i, s in enumerate(res.shots)
    ]
    dec = Decoded(views, warnings=list(res.warnings), duration_s=res.info.duration_s,
                  width=res.info.width, height=res.info.height)
    dec.post_encode = lambda encs: [summary_view(media_id, views, encs)] if views else []
    return dec


def summary_view(
    media_id: str, frames: list[DecodedView], encodings: list[ViewEncoding]
) -> tuple[DecodedView, ViewEncoding]:
    """A video-level view for "find videos about X": its description is assembled from the
    shots' evidence (duration-weighted tags, OCR lines), its vectors are the
    duration-weighted mean of the shots' vectors, and its image is the longest shot's
    keyframe."""
    durations = np.array([max(1e-3, float((f.view.t_end or 0) - (f.view.t_start or 0)))
                          for f in frames], dtype=np.float32)
    desc = summarize_shots([((f.view.t_start or 0.0, f.view.t_end or 0.0), e.description)
                            for f, e in zip(frames, encodings, strict=True)])
    vectors = {}
    for space in encodings[0].vectors:
        stack = np.stack([np.asarray(e.vectors[space], dtype=np.float32) for e in encodings])
        vectors[space] = l2_normalize((stack * durations[:, None]).sum(axis=0))
    longest = frames[int(np.argmax(durations))].view
    idx = len(frames)
    view = ViewInput(view_id=f"{media_id}:{idx}", image=longest.image, kind="summary",
                     t_start=frames[0].view.t_start, t_end=frames[-1].view.t_end)
    return DecodedView(view, idx, store_image=True), ViewEncoding(desc, vectors)
