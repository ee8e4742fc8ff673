"""`glimpse bench`: every measurement in one JSON document, measured side by side in one run
on this machine. Sections can be chosen with `only` (comma list)."""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ingest import (  # noqa: F401 - re-exported for the sections and tests
    _oracle_run,
    _pct,
    bench_ingest,
    bench_search_and_conversation,
    peak_rss_mb,
    phone_photos,
)
from bench.photos import SAMPLES, synth_photos  # noqa: F401
from indexer.settings import Settings

log = logging.getLogger(__name__)
SECTIONS = ("ingest", "ocr_gate", "search", "vectors", "cpu_model", "video", "documents",
            "embed", "celery", "quality", "objects", "faces", "generate", "security", "memory")


def run_bench(settings: Settings, *, quick: bool = False, only: str | None = None,
              topology: str = "embedded") -> dict[str, Any]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    chosen = [s.strip() for s in only.split(",")] if only else [
        s for s in SECTIONS if s != "celery" or topology == "celery"]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown bench sections: {sorted(unknown)}; choose from {SECTIONS}")
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "quick": quick},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for sec in chosen:
        t0 = time.perf_counter()
        log.warning("bench: %s …", sec)
        try:
            out[sec] = _section(sec, settings, quick)
        except Exception as e:  # noqa: BLE001 - one failing section must not hide the rest
            log.exception("bench section %s failed", sec)
            out[sec] = {"error": repr(e)}
        out.setdefault("section_seconds", {})[sec] = round(time.perf_counter() - t0, 1)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _section(sec: str, settings: Settings, quick: bool) -> dict[str, Any]:
    if sec == "ingest":
        n = 24 if quick else 120
        with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as tmp:
            photos = synth_photos(n, Path(tmp) / "crops")
            phones = phone_photos(8 if quick else 24, Path(tmp) / "phone")
            return {
                "ocr_gated": bench_ingest(settings, n, "gated", photos=photos),
                "ocr_on": bench_ingest(settings, n, "on", photos=photos),
                "ocr_off": bench_ingest(settings, n, "off", photos=photos),
                # the lanes lever, side by side on the same photos
                "ocr_gated_1_lane": bench_ingest(settings, n, "gated", lanes=1, photos=photos),
                # not a mode: the gate replaced by an oracle that knows which photos are text
                # pages; the ceiling a better gate could reach on these photos
                "ocr_perfect_gate": _oracle_run(settings, n, photos),
                "phone_12mp_ocr_gated": bench_ingest(settings, len(phones), "gated",
                                                     photos=phones),
            }
    if sec == "ocr_gate":
        from bench.ocr_gate import bench_ocr_gate

        return bench_ocr_gate()
    if sec == "search":
        return bench_search_and_conversation(settings, 30 if quick else 120)
    if sec == "vectors":
        from bench.vectors import bench_vectors

        return bench_vectors(sizes=(10_000,) if quick else (10_000, 100_000))
    if sec == "cpu_model":
        from bench.cpu_model import bench_cpu_model

        return bench_cpu_model(n_images=12 if quick else 40)
    if sec == "video":
        from bench.video import bench_video

        return dict(bench_video(n_videos=3 if quick else 8))
    if sec == "documents":
        from bench.documents import bench_documents

        return bench_documents(n_pages=2 if quick else 3, n_tables=2 if quick else 4,
                               n_charts=3 if quick else 6)
    if sec == "memory":
        from bench.memory import bench_memory

        return bench_memory(n_images=10)
    if sec == "embed":
        from bench.embed import bench_embed

        return bench_embed(settings, n_images=16 if quick else 32)
    if sec == "quality":
        from bench.quality import bench_quality, bench_scanned_pages

        out = bench_quality(settings, split="test", quick=quick)
        out["scanned_pages"] = bench_scanned_pages(n_pages=3 if quick else 8)
        return out
    if sec == "objects":
        from bench.objects import bench_objects

        return bench_objects(settings, quick=quick)
    if sec == "faces":
        from bench.faces import bench_faces

        return bench_faces(settings, quick=quick)
    if sec == "generate":
        from bench.generate import bench_generate

        return bench_generate(settings, quick=quick)
    if sec == "security":
        from bench.security import bench_security  # drives the HTTP app (service/)

        return bench_security(settings, quick=quick)
    if sec == "celery":
        from bench.celery_topology import bench_celery

        return bench_celery(settings, quick=quick)  # type: ignore[no-any-return]
    raise ValueError(sec)
