"""Video probing, keyframe extraction, shot summaries and moments — pure domain code.

The decoder is PyAV. Shot detection runs on tiny frames built straight from the decoded
YUV planes (no full-size colour conversion per frame): a soft-binned HSV histogram per
frame, compared frame to frame for hard cuts (adaptive threshold: median + k·MAD of the
recent frame differences, with a one-frame look-ahead that ignores flashes) and against a
per-shot reference for gradual transitions (fades, dissolves: drift since the last cut
crosses a threshold, the new keyframe is taken once the picture settles). A maximum gap
splits long static shots into sub-shots; a new keyframe too similar to the previous kept
one is merged into it; a shot shorter than ``min_shot_s`` is folded into its neighbour.

``extract_keyframes`` decodes in-process; ``extract_keyframes_bounded`` runs the same code
in a child process with a hard timeout, so one pathological file cannot hang a worker.

One module per concern: `values` (what is returned and raised), `probe`, `signatures`
(per-frame histograms), `cuts` (the detector), `keyframes` (scanning, `extract_keyframes`),
`bounded` (the child-process wrapper), `moments` (summaries and merged moments). Every
name is importable from here as before."""

from __future__ import annotations

from indexer.media.video.bounded import extract_keyframes_bounded
from indexer.media.video.cuts import DetectorParams
from indexer.media.video.keyframes import _scan as _scan  # tests patch it here
from indexer.media.video.keyframes import extract_keyframes
from indexer.media.video.moments import merge_moments, summarize_shots
from indexer.media.video.probe import probe_video
from indexer.media.video.signatures import _hist_dist as _hist_dist
from indexer.media.video.signatures import _signature as _signature
from indexer.media.video.signatures import _signature_exact as _signature_exact
from indexer.media.video.values import (
    DEFAULT_MAX_DIMS,
    FAST_DECODE_MIN_PIXELS,
    BoundaryKind,
    DecodeTimeout,
    KeyframeResult,
    Moment,
    Shot,
    VideoInfo,
)

__all__ = [
    "DEFAULT_MAX_DIMS", "FAST_DECODE_MIN_PIXELS", "BoundaryKind", "DecodeTimeout",
    "DetectorParams", "KeyframeResult", "Moment", "Shot", "VideoInfo", "extract_keyframes",
    "extract_keyframes_bounded", "merge_moments", "probe_video", "summarize_shots",
]
