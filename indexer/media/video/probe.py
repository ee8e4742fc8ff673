"""Probing: is this a video container, and what is in it (PyAV)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import av

from indexer.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from indexer.media.video.values import DEFAULT_MAX_DIMS, VideoInfo

log = logging.getLogger(__name__)


_CONTAINER_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (4, b"skip"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


def _looks_like_container(path: Path) -> bool:
    """Does the file start like a video container? Tells 'truncated' from 'not a video'."""
    try:
        with path.open("rb") as fh:
            head = fh.read(400)
    except OSError:
        return False
    if any(head[off : off + len(magic)] == magic for off, magic in _CONTAINER_MAGIC):
        return True
    return len(head) > 188 and head[0] == 0x47 and head[188] == 0x47  # MPEG-TS


def _open(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise CorruptMedia(f"cannot read video file: {exc}") from exc
    if size == 0:
        raise CorruptMedia("video file is empty (0 bytes)", detail={"size": 0})
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        if _looks_like_container(p):
            raise CorruptMedia(
                f"video container is damaged or truncated and cannot be opened: {exc}",
                detail={"size": size},
            ) from exc
        raise UnsupportedMedia(
            "file is not a recognisable video (unknown or non-media format)",
            detail={"size": size},
        ) from exc


def _video_stream(container: Any) -> Any:
    streams = [
        s
        for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        what = "audio-only file" if "audio" in kinds else "no video stream"
        raise UnsupportedMedia(
            f"not a video: {what} (streams: {', '.join(kinds) or 'none'})",
            detail={"streams": kinds},
        )
    return streams[0]


def _stream_info(container: Any, stream: Any, max_dims: tuple[int, int]) -> VideoInfo:
    ctx = stream.codec_context
    codec = getattr(ctx, "name", None) or getattr(stream.codec, "name", "") or "unknown"
    if getattr(stream.codec, "is_decoder", True) is False:
        raise UnsupportedMedia(f"no decoder for video codec {codec!r}", detail={"codec": codec})
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width <= 0 or height <= 0:
        raise CorruptMedia("video stream has no frame size", detail={"codec": codec})
    big, small = max(max_dims), min(max_dims)
    if max(width, height) > big or min(width, height) > small:
        raise MediaTooLarge(
            f"video resolution {width}x{height} exceeds the limit of {big}x{small}",
            detail={"width": width, "height": height, "max": [big, small]},
        )
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if not (0.0 < fps < 1000.0):
        fps = 25.0
    duration = 0.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    if duration <= 0 and container.duration:
        duration = container.duration / 1_000_000
    n_frames = int(stream.frames) if stream.frames else None
    if duration <= 0 and n_frames:
        duration = n_frames / fps
    return VideoInfo(
        duration_s=max(0.0, duration),
        fps=fps,
        width=width,
        height=height,
        codec=codec,
        has_video=True,
        n_frames=n_frames,
        container=str(getattr(container.format, "name", "")),
    )


def probe_video(
    path: str | os.PathLike[str], *, max_dims: tuple[int, int] = DEFAULT_MAX_DIMS
) -> VideoInfo:
    """Read the container header: duration, fps, size, codec. Raises typed errors."""
    container = _open(path)
    try:
        stream = _video_stream(container)
        return _stream_info(container, stream, max_dims)
    finally:
        container.close()
