"""`extract_keyframes_bounded`: the same scan in a child process with a hard timeout,
so one pathological file cannot hang a worker."""

from __future__ import annotations

import io
import logging
import multiprocessing as mp
import os
import time
from typing import Any

from PIL import Image

from indexer.errors import CorruptMedia, GlimpseError, MediaTooLarge, UnsupportedMedia
from indexer.media.video import keyframes
from indexer.media.video.cuts import DetectorParams, _RawShot
from indexer.media.video.keyframes import _Collector, _fmt_duration, _ScanEnd
from indexer.media.video.probe import probe_video
from indexer.media.video.values import DEFAULT_MAX_DIMS, DecodeTimeout, KeyframeResult, VideoInfo

log = logging.getLogger(__name__)


def _encode_image(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _decode_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def _child_main(conn: Any, path: str, kwargs: dict[str, Any]) -> None:
    """Child process: stream shots (JPEG bytes) up the pipe, then 'end' or 'error'."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        timeout_s = kwargs.pop("timeout_s")
        deadline = time.monotonic() + timeout_s if timeout_s else None
        for item in keyframes._scan(path, deadline=deadline, **kwargs):  # patchable
            if isinstance(item, _ScanEnd):
                conn.send(("end", item.info, item.warnings, item.partial, item.frame_exact))
            else:
                img = item.image
                item.image = None
                conn.send(("shot", item, _encode_image(img) if img is not None else b""))
    except GlimpseError as exc:
        conn.send(("error", type(exc).__name__, exc.message, exc.detail))
    except Exception as exc:  # anything else is a decoder problem with this file
        conn.send(("error", "CorruptMedia", f"video decoding failed: {exc}", {}))
    finally:
        conn.close()


_ERRORS: dict[str, type[GlimpseError]] = {
    c.__name__: c for c in (CorruptMedia, UnsupportedMedia, MediaTooLarge, DecodeTimeout)
}


def extract_keyframes_bounded(
    path: str | os.PathLike[str],
    *,
    max_frames: int = 200,
    max_gap_s: float = 10.0,
    timeout_s: float = 300.0,
    keyframe_max_side: int = 640,
    max_dims: tuple[int, int] = DEFAULT_MAX_DIMS,
    max_full_decode_s: float = 3 * 3600.0,
    fast_decode: bool | None = None,
    params: DetectorParams | None = None,
    start_method: str = "spawn",
) -> KeyframeResult:
    """`extract_keyframes` in a child process, killed if it runs past `timeout_s`.

    The child stops itself a little before the limit and reports what it has; if it is
    stuck (inside the decoder) it is killed at the limit and the shots it already sent come
    back with a warning. With nothing sent, ``DecodeTimeout`` (a CorruptMedia) is raised.
    """
    ctx = mp.get_context(start_method)
    recv, send = ctx.Pipe(duplex=False)
    soft = max(0.05, timeout_s * 0.85 - 0.5) if timeout_s > 2 else timeout_s * 0.85
    kwargs: dict[str, Any] = dict(
        max_frames=max_frames,
        max_gap_s=max_gap_s,
        timeout_s=soft,
        keyframe_max_side=keyframe_max_side,
        max_dims=max_dims,
        max_full_decode_s=max_full_decode_s,
        fast_decode=fast_decode,
        params=params or DetectorParams(),
    )
    started = time.monotonic()
    deadline = started + timeout_s
    proc = ctx.Process(  # type: ignore[attr-defined]
        target=_child_main, args=(send, os.fspath(path), kwargs), daemon=True)
    proc.start()
    send.close()
    collector = _Collector(max_frames)
    end: tuple[VideoInfo, list[str], bool, bool] | None = None
    last_t = 0.0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not recv.poll(remaining):
                break
            try:
                msg = recv.recv()
            except EOFError:
                break
            if msg[0] == "shot":
                raw: _RawShot = msg[1]
                raw.image = _decode_image(msg[2])
                last_t = raw.t_end
                collector.add(raw)
            elif msg[0] == "end":
                end = (msg[1], msg[2], msg[3], msg[4])
                break
            else:
                _, name, message, detail = msg
                raise _ERRORS.get(name, CorruptMedia)(message, detail=detail)
    finally:
        killed = proc.is_alive() and end is None
        if proc.is_alive():
            if killed:
                proc.kill()
            proc.join(timeout=5)
            if proc.is_alive():  # pragma: no cover
                proc.kill()
                proc.join(timeout=5)
        recv.close()
    if end is not None:
        return collector.result(*end)
    elapsed = time.monotonic() - started
    pid = proc.pid
    if not collector.shots:
        if killed or elapsed >= timeout_s:
            raise DecodeTimeout(
                f"video decoding did not finish within {timeout_s:g} s and was stopped",
                detail={"timeout_s": timeout_s, "pid": pid},
            )
        raise CorruptMedia(
            f"video decoder process died (exit code {proc.exitcode})",
            detail={"exitcode": proc.exitcode, "pid": pid},
        )
    try:
        info = probe_video(path, max_dims=max_dims)
    except GlimpseError:  # pragma: no cover - it opened in the child
        info = VideoInfo(last_t, 0.0, 0, 0, "unknown")
    why = "was stopped at the time limit" if killed else f"died (exit code {proc.exitcode})"
    return collector.result(
        info,
        [f"decoder {why}: indexed the first {last_t:.1f} s of a "
         f"{_fmt_duration(info.duration_s)} file"],
        True,
    )
