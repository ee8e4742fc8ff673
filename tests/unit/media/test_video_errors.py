"""Broken, empty, non-video and oversized inputs give the right typed error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from bench.video import Segment, TruthBoundary, make_synthetic_video
from indexer.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from indexer.media.video import extract_keyframes, probe_video


def _audio_only(path: Path, codec: str, fmt: str) -> None:
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=16000, layout="mono")
        t = np.arange(16000 * 1) / 16000
        pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        fmt_name = "s16" if codec == "pcm_s16le" else "fltp"
        data = pcm[None, :] if fmt_name == "s16" else (pcm[None, :] / 32768).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data, format=fmt_name, layout="mono")
        frame.sample_rate = 16000
        for pkt in stream.encode(frame):
            out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)


def test_zero_length_file_is_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(CorruptMedia, match="empty"):
        probe_video(p)
    with pytest.raises(CorruptMedia):
        extract_keyframes(p)


def test_text_file_renamed_mp4_is_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp4"
    p.write_text("these are my meeting notes, not a video\n" * 50)
    with pytest.raises(UnsupportedMedia, match="not a recognisable video"):
        probe_video(p)
    with pytest.raises(UnsupportedMedia):
        extract_keyframes(p)


def test_truncated_mp4_is_corrupt(video_cuts: tuple[Path, list[TruthBoundary]],
                                  tmp_path: Path) -> None:
    data = video_cuts[0].read_bytes()
    p = tmp_path / "cut_short.mp4"
    p.write_bytes(data[: len(data) // 2])  # moov (index) is at the end: now missing
    with pytest.raises(CorruptMedia, match="damaged or truncated"):
        probe_video(p)
    with pytest.raises(CorruptMedia):
        extract_keyframes(p)


def test_truncated_faststart_mp4_gives_prefix_and_warning(video_dir: Path,
                                                          tmp_path: Path) -> None:
    src = video_dir / "faststart.mp4"
    make_synthetic_video(src, [Segment("shapes", 3.0, (220, 40, 40), seed=1),
                               Segment("shapes", 3.0, (40, 70, 220), seed=2)], faststart=True)
    data = src.read_bytes()
    p = tmp_path / "fs_short.mp4"
    p.write_bytes(data[: int(len(data) * 0.5)])
    res = extract_keyframes(p)
    assert res.partial
    assert any("truncated" in w or "stopped" in w for w in res.warnings), res.warnings
    assert res.shots and 0.5 < res.shots[-1].t_end < 5.0


@pytest.mark.parametrize(("codec", "fmt"), [("aac", "mp4"), ("pcm_s16le", "wav")])
def test_audio_only_is_unsupported(tmp_path: Path, codec: str, fmt: str) -> None:
    p = tmp_path / f"voice.{'m4a' if fmt == 'mp4' else 'wav'}"
    _audio_only(p, codec, fmt)
    with pytest.raises(UnsupportedMedia, match="audio-only") as err:
        probe_video(p)
    assert err.value.detail["streams"] == ["audio"]
    with pytest.raises(UnsupportedMedia):
        extract_keyframes(p)


def test_resolution_over_limit_is_too_large(
    video_cuts: tuple[Path, list[TruthBoundary]],
) -> None:
    path = video_cuts[0]  # 160x96
    with pytest.raises(MediaTooLarge, match="160x96 exceeds"):
        probe_video(path, max_dims=(128, 128))
    with pytest.raises(MediaTooLarge):
        extract_keyframes(path, max_dims=(160, 90))
    assert probe_video(path, max_dims=(160, 96)).width == 160  # exactly at the limit is fine
