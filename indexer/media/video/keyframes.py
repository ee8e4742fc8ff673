"""Scanning a video into shots and keyframes (in this process): decode, detect, cap
the number of frames, `extract_keyframes`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from indexer.errors import CorruptMedia
from indexer.media.video.cuts import DetectorParams, _frame_image, _RawShot, _Scanner
from indexer.media.video.probe import _open, _stream_info, _video_stream
from indexer.media.video.signatures import _Sampler, _Sig, _signature
from indexer.media.video.values import (
    DEFAULT_MAX_DIMS,
    FAST_DECODE_MIN_PIXELS,
    KeyframeResult,
    Shot,
    VideoInfo,
)

log = logging.getLogger(__name__)


@dataclass
class _ScanEnd:
    info: VideoInfo
    warnings: list[str]
    partial: bool
    frame_exact: bool = True


def _fmt_duration(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f}-hour"
    if s >= 60:
        return f"{s / 60:.1f}-minute"
    return f"{s:.1f}-second"


def _scan(
    path: str | os.PathLike[str],
    *,
    max_frames: int,
    max_gap_s: float,
    deadline: float | None,
    keyframe_max_side: int,
    max_dims: tuple[int, int],
    max_full_decode_s: float,
    fast_decode: bool | None,
    params: DetectorParams,
) -> Iterator[_RawShot | _ScanEnd]:
    """Yield raw shots as they become final, then one _ScanEnd."""
    container = _open(path)
    try:
        stream = _video_stream(container)
        info = _stream_info(container, stream, max_dims)
        if info.duration_s > max_full_decode_s and max_frames > 0:
            yield from _scan_sampled(container, stream, info, max_frames, keyframe_max_side,
                                     deadline)
            return
        stream.thread_type = "AUTO"
        if fast_decode is None:
            fast_decode = info.width * info.height >= FAST_DECODE_MIN_PIXELS or info.fps > 40
        if fast_decode:
            stream.codec_context.skip_frame = "NONREF"
        sampler = _Sampler(info.width, info.height)
        scanner = _Scanner(info.fps, max_gap_s, keyframe_max_side, params)
        warnings: list[str] = []
        partial = False
        t0: float | None = None
        last_t = 0.0
        n = 0
        bad_packets = 0
        last_err: Exception | None = None

        def frames() -> Iterator[Any]:
            nonlocal bad_packets, last_err
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except (av.error.FFmpegError, ValueError) as exc:
                    bad_packets += 1  # skip a damaged packet; give up after many
                    last_err = exc
                    if bad_packets > 100:
                        raise
                    continue
                yield from decoded

        try:
            for frame in frames():
                ft = frame.time
                if ft is None:
                    ft = n / info.fps
                if t0 is None:
                    t0 = ft
                t = max(0.0, ft - t0)
                if t < last_t - 1e-6 and n > 0:
                    continue  # out-of-order timestamp: skip rather than go back in time
                last_t = t
                n += 1
                if (frame.width, frame.height) != (sampler.width, sampler.height):
                    sampler = _Sampler(frame.width, frame.height)
                yield from scanner.feed(t, frame, _signature(*sampler.yuv(frame)))
                if deadline is not None and time.monotonic() > deadline:
                    partial = True
                    warnings.append(
                        f"decode time limit reached: indexed the first {t:.1f} s of a "
                        f"{_fmt_duration(info.duration_s)} file"
                    )
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            if n == 0:
                raise CorruptMedia(f"video could not be decoded: {exc}") from exc
            partial = True
            warnings.append(f"decoding stopped at {last_t:.1f} s: {exc}")
        if n == 0:
            why = f": {last_err}" if last_err else ""
            raise CorruptMedia(f"video stream contains no decodable frames{why}")
        if bad_packets:
            warnings.append(f"skipped {bad_packets} damaged packet(s) while decoding")
        end_t = last_t + 1.0 / info.fps
        if not partial and info.duration_s > 0 and end_t < 0.9 * info.duration_s - 0.5:
            warnings.append(
                f"file looks truncated: decoded {end_t:.1f} s of the {info.duration_s:.1f} s "
                "the header announces"
            )
            partial = True
        yield from scanner.finish(end_t)
        yield _ScanEnd(info, warnings, partial, frame_exact=not fast_decode)
    finally:
        container.close()


def _scan_sampled(
    container: Any,
    stream: Any,
    info: VideoInfo,
    max_frames: int,
    keyframe_max_side: int,
    deadline: float | None,
) -> Iterator[_RawShot | _ScanEnd]:
    """Too long to decode fully: one keyframe at the middle of each of max_frames slices."""
    n = max(1, max_frames)
    span = info.duration_s / n
    start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    got = 0
    partial = False
    warnings: list[str] = []
    sampler = _Sampler(info.width, info.height)
    for i in range(n):
        if deadline is not None and time.monotonic() > deadline:
            partial = True
            break
        target = (i + 0.5) * span
        try:
            container.seek(int((start + target) / stream.time_base), stream=stream,
                           backward=True, any_frame=False)
            chosen = None
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is None or frame.time - start >= target - 1.0 / info.fps:
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            log.debug("seek to %.1f s failed: %s", target, exc)
            continue
        if chosen is None:
            continue
        sig = _signature(*sampler.yuv(chosen)) if (chosen.width, chosen.height) == (
            info.width, info.height) else _Sig(np.zeros(1), np.zeros(1))
        got += 1
        yield _RawShot(
            t_start=i * span,
            keyframe_t=target,
            sig=sig,
            image=_frame_image(chosen, keyframe_max_side),
            kind="sample",
            strength=0.0,
            t_end=(i + 1) * span,
            weight=span,
        )
    if got == 0:
        raise CorruptMedia("no frame could be decoded at any sampled position")
    warnings.append(
        f"sampled {got} frames evenly across a {_fmt_duration(info.duration_s)} file "
        "(too long to decode fully); no shot detection"
    )
    if partial:
        warnings.append(f"decode time limit reached after {got} of {n} samples")
    yield _ScanEnd(info, warnings, partial, frame_exact=False)


# --------------------------------------------------------------------------- frame cap


def _merge_pair(a: _RawShot, b: _RawShot) -> _RawShot:
    keep = a if a.weight >= b.weight else b
    return _RawShot(
        t_start=a.t_start,
        keyframe_t=keep.keyframe_t,
        sig=keep.sig,
        image=keep.image,
        kind=a.kind,
        strength=a.strength,
        t_end=b.t_end,
        weight=keep.weight,
    )


def _cap(shots: list[_RawShot], limit: int) -> list[_RawShot]:
    """Merge across the weakest boundaries until at most `limit` shots remain."""
    shots = list(shots)
    limit = max(1, limit)
    while len(shots) > limit:
        best = min(
            range(1, len(shots)),
            key=lambda i: (shots[i].strength, shots[i].t_end - shots[i - 1].t_start),
        )
        shots[best - 1 : best + 1] = [_merge_pair(shots[best - 1], shots[best])]
    return shots


def _to_shots(raw: list[_RawShot]) -> list[Shot]:
    out = []
    for i, r in enumerate(raw):
        assert r.image is not None
        out.append(
            Shot(
                index=i,
                t_start=round(r.t_start, 4),
                t_end=round(r.t_end, 4),
                keyframe_t=round(r.keyframe_t, 4),
                image=r.image,
                boundary="start" if i == 0 else r.kind,
                boundary_score=round(float(r.strength), 4),
            )
        )
    return out


class _Collector:
    """Gathers streamed shots, compacting as it goes so memory stays near max_frames."""

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max(1, max_frames)
        self.shots: list[_RawShot] = []
        self.seen = 0

    def add(self, shot: _RawShot) -> None:
        self.shots.append(shot)
        self.seen += 1
        if len(self.shots) > self.max_frames + max(16, self.max_frames // 4):
            self.shots = _cap(self.shots, self.max_frames)

    def result(
        self, info: VideoInfo, warnings: list[str], partial: bool, frame_exact: bool = True
    ) -> KeyframeResult:
        warnings = list(warnings)
        shots = self.shots
        if len(shots) > self.max_frames or self.seen > self.max_frames:
            shots = _cap(shots, self.max_frames)
            warnings.append(
                f"frame cap: indexed {len(shots)} keyframes for {self.seen} detected shots "
                f"of a {_fmt_duration(info.duration_s)} file (max_frames={self.max_frames}); "
                "neighbouring shots were merged"
            )
        return KeyframeResult(_to_shots(shots), warnings, info, partial, frame_exact)


def extract_keyframes(
    path: str | os.PathLike[str],
    *,
    max_frames: int = 200,
    max_gap_s: float = 10.0,
    timeout_s: float | None = 300.0,
    keyframe_max_side: int = 640,
    max_dims: tuple[int, int] = DEFAULT_MAX_DIMS,
    max_full_decode_s: float = 3 * 3600.0,
    fast_decode: bool | None = None,
    params: DetectorParams | None = None,
) -> KeyframeResult:
    """Decode `path` in this process and return its shots with one keyframe each.

    ``timeout_s`` is a soft limit: decoding stops there and the shots so far come back with
    a warning (``partial=True``). Use ``extract_keyframes_bounded`` for a hard limit.
    ``fast_decode`` skips non-reference frames: about twice as fast, but a hard cut that
    lands on a skipped frame is reported one or two frames late. ``None`` (default) turns it
    on for HD and larger (>= 1280x720) or > 40 fps, where full decoding cannot keep 30x real
    time on two cores; smaller videos are decoded frame-exact.
    """
    deadline = time.monotonic() + timeout_s if timeout_s else None
    collector = _Collector(max_frames)
    for item in _scan(
        path,
        max_frames=max_frames,
        max_gap_s=max_gap_s,
        deadline=deadline,
        keyframe_max_side=keyframe_max_side,
        max_dims=max_dims,
        max_full_decode_s=max_full_decode_s,
        fast_decode=fast_decode,
        params=params or DetectorParams(),
    ):
        if isinstance(item, _ScanEnd):
            return collector.result(item.info, item.warnings, item.partial, item.frame_exact)
        collector.add(item)
    raise CorruptMedia("video scan ended without a result")  # pragma: no cover
