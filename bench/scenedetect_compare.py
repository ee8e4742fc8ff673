"""PySceneDetect (`scenedetect`) beside Glimpse's own shot detector, on the bench's generated
edits (hard cuts, dissolves, fades to black; the same videos and scoring as bench_video):
boundary precision / recall / F1 and wall time per video. Adopted only if at least as good."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Scorer = Callable[[list[float], list[Any], float], tuple[int, int, int]]


def _scores(found: list[list[float]], truths: Sequence[list[Any]], fps: float,
            score_boundaries: Scorer) -> dict[str, Any]:
    tp = n_det = n_true = 0
    by_kind: dict[str, list[int]] = {}
    for det, truth in zip(found, truths, strict=True):
        a, b, c = score_boundaries(det, truth, fps)
        tp, n_det, n_true = tp + a, n_det + b, n_true + c
        for tb in truth:
            hit, _, _ = score_boundaries(det, [tb], fps)
            k = by_kind.setdefault(tb.kind, [0, 0])
            k[0] += hit
            k[1] += 1
    p = tp / n_det if n_det else 0.0
    r = tp / n_true if n_true else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "detected": n_det, "true_boundaries": n_true,
            "recall_by_kind": {k: f"{h}/{n}" for k, (h, n) in by_kind.items()}}


def compare_shot_detectors(paths: Sequence[Path], truths: Sequence[list[Any]], fps: float,
                           score_boundaries: Scorer) -> dict[str, Any]:
    """`paths`: the bench's generated videos; `truths`: their true boundaries;
    `score_boundaries`: bench_video's scorer (the same tolerance for every detector)."""
    from indexer.media.video import extract_keyframes

    try:
        import scenedetect
        from scenedetect import (
            AdaptiveDetector,
            ContentDetector,
            SceneManager,
            ThresholdDetector,
            open_video,
        )
    except ImportError as e:
        return {"skipped": f"scenedetect is not installed ({e}); pip install scenedetect-headless"}
    def ours(p: Path) -> list[float]:
        res = extract_keyframes(p, max_gap_s=1e9, max_frames=1000, timeout_s=None,
                                fast_decode=False)
        return [s.t_start for s in res.shots if s.boundary in ("cut", "fade")]

    def psd(*detectors: Any) -> Any:
        def run(p: Path) -> list[float]:
            sm = SceneManager()
            for d in detectors:
                sm.add_detector(d())
            sm.detect_scenes(open_video(str(p)), show_progress=False)
            return [s[0].get_seconds() for s in sm.get_scene_list()[1:]]
        return run

    candidates = {
        "glimpse": ours,
        "pyscenedetect_content": psd(ContentDetector),
        "pyscenedetect_adaptive": psd(AdaptiveDetector),
        "pyscenedetect_content_plus_threshold": psd(ContentDetector, ThresholdDetector),
    }
    out: dict[str, Any] = {"scenedetect_version": scenedetect.__version__, "videos": len(paths),
                           "detectors": "PySceneDetect defaults (ContentDetector threshold 27, "
                                        "AdaptiveDetector, ThresholdDetector for fades)"}
    for name, fn in candidates.items():
        t0 = time.perf_counter()
        found = [fn(p) for p in paths]
        out[name] = {**_scores(found, truths, fps, score_boundaries),
                     "wall_s_per_video": round((time.perf_counter() - t0) / len(paths), 3)}
    best = max((k for k in candidates if k != "glimpse"), key=lambda k: out[k]["f1"])
    out["adopted"] = out[best]["f1"] >= out["glimpse"]["f1"]
    out["verdict"] = (f"{best} (F1 {out[best]['f1']}) " +
                      ("is at least as good: adopt" if out["adopted"] else
                       f"is worse than Glimpse's own detector (F1 {out['glimpse']['f1']}): "
                       "kept the own detector"))
    return out
