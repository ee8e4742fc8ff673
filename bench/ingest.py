"""Shared measurements of the bench sections: in-process ingest through the real pipeline,
search and conversation latency, peak RSS, phone-sized photos (run.py and the sections import
these; nothing here imports a section)."""

from __future__ import annotations

import logging
import resource
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.photos import SAMPLES, synth_photos
from indexer.settings import Settings

log = logging.getLogger(__name__)


class CollectJobs:
    """An enqueuer that only records job ids: the bench runs them itself, in one batch."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def enqueue_ingest(self, job_id: str) -> None:
        self.jobs.append(job_id)


def index_paths(settings: Settings, data_dir: Path, paths: list[Path]
                ) -> tuple[Any, list[str]]:
    """A fresh in-process Glimpse on `data_dir` (a copy of `settings`) with `paths` accepted
    and indexed in one batch: (the core, each path's media id in order). The caller closes
    the core."""
    from indexer.context import Glimpse
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner

    s = settings.model_copy(deep=True)
    s.data_dir = data_dir
    core = Glimpse(s)
    core.migrate()
    queued = CollectJobs()
    media = [accept_path(core, p, tenant=None, enqueuer=queued).media_id for p in paths]
    InProcessRunner(core).run_batch(queued.jobs)
    return core, media


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def phone_photos(n: int, out: Path, seed: int = 2) -> list[Path]:
    """12 MP JPEGs (4032x3024, quality 90, with sensor-like noise so they compress like
    camera files) made from the bench crops: what a phone uploads."""
    rng = np.random.default_rng(seed)
    paths = []
    for i, p in enumerate(synth_photos(n, out / "src", seed=seed)):
        im = Image.open(p).convert("RGB").resize((4032, 3024), Image.Resampling.BILINEAR)
        a = np.asarray(im, np.int16) + rng.integers(-5, 6, (3024, 4032, 1), dtype=np.int16)
        q = out / f"phone_{i:04d}.jpg"
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(q, quality=90)
        paths.append(q)
    return paths


def _oracle_run(settings: Settings, n: int, photos: list[Path]) -> dict[str, Any]:
    """Ingest with the gate replaced by an oracle that knows which photos are crops of the
    text page (synth_photos cycles the six samples; the page is the fifth): what a perfect
    gate would be worth on these photos. It recognises a view by a hash of its pixels."""
    from indexer.media.images import load_view_rgb

    def key(im: Image.Image) -> bytes:
        return im.convert("RGB").tobytes()[:4096] + str(im.size).encode()

    text = {key(load_view_rgb(p, settings.limits)) for i, p in enumerate(photos)
            if i % 6 == 4}
    return bench_ingest(settings, n, "gated", photos=photos,
                        text_gate=lambda im: key(im) in text)


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(xs), q)), 2) if xs else 0.0


def bench_ingest(settings: Settings, n: int, ocr: str, *, lanes: int | None = None,
                 photos: list[Path] | None = None,
                 text_gate: Callable[[Image.Image], bool] | None = None) -> dict[str, Any]:
    """In-process ingest of n photos through the real pipeline and the real runner (validate →
    queue → lanes: decode → model → text embed → persist), as `glimpse serve` runs it: each
    accepted file is enqueued at once and the runner's lanes batch whatever is waiting.
    Per-stage timings are summed from the jobs (stages of two lanes overlap, so they add up
    to more than the wall time)."""
    from indexer.context import Glimpse
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner

    tmp = Path(tempfile.mkdtemp(prefix="glimpse-bench-"))
    try:
        photos = photos if photos is not None else synth_photos(n, tmp / "photos")
        n = len(photos)
        s = settings.model_copy(deep=True)
        s.data_dir = tmp / "data"
        s.model.ocr = ocr  # type: ignore[assignment]
        if lanes is not None:
            s.queue.local_lanes = lanes
        core = Glimpse(s)
        core.migrate()
        core.model.load()
        if text_gate is not None:
            core.model.text_gate = text_gate  # type: ignore[attr-defined]
        # steady state: the model's worker threads and their OCR/detector instances exist
        # before the clock starts (as in a server that has indexed anything at all)
        from indexer.domain import ViewInput

        core.model.encode_views([ViewInput(f"warm-{p.stem}", Image.open(p).convert("RGB"))
                                 for p in sorted(SAMPLES.glob("*.jpg"))])
        runner = InProcessRunner(core)
        stages: dict[str, float] = {}
        jobs: list[str] = []

        class Enqueue:
            def enqueue_ingest(self, job_id: str) -> None:
                jobs.append(job_id)
                runner.enqueue_ingest(job_id)

        t0, c0 = time.perf_counter(), time.process_time()
        for p in photos:
            accept_path(core, p, tenant=None, enqueuer=Enqueue())
        t_accept = time.perf_counter() - t0
        runner.wait_idle()
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        runner.stop()
        failed = 0
        for j in jobs:
            row = core.catalog.get_job(j)
            failed += row.status != "done"
            for k, v in (row.timings or {}).items():
                stages[k] = stages.get(k, 0.0) + float(v)
        core.close()
        if failed:
            raise RuntimeError(f"bench ingest: {failed} of {n} jobs did not finish")
        return {
            "images": n, "ocr": ocr, "batch_size": s.model.batch_size,
            "lanes": s.queue.local_lanes, "view_workers": s.model.view_workers,
            "seconds": round(dt, 2),
            "images_per_s": round(n / dt, 2),
            "accept_ms_per_image": round(t_accept * 1000 / n, 2),
            # CPU time of the whole process per image (all threads): with C cores the rate
            # can be at most C * 1000 / cpu_ms_per_image; cores_busy says how close it got
            "cpu_ms_per_image": round(cpu * 1000 / n, 1),
            "cores_busy": round(cpu / dt, 2),
            "stage_ms_per_image": {k: round(v / n, 2) for k, v in stages.items()},
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_search_and_conversation(settings: Settings, n: int) -> dict[str, Any]:
    """End-to-end text search over a small real index (embed + retrieve + fuse, then with
    rerank, then with rerank + explain of top-20), and a follow-up turn against the first."""
    from indexer.context import Glimpse
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner
    from indexer.search import SearchQuery

    tmp = Path(tempfile.mkdtemp(prefix="glimpse-bench-"))
    try:
        photos = synth_photos(n, tmp / "photos", seed=1)
        s = settings.model_copy(deep=True)
        s.data_dir = tmp / "data"
        s.model.ocr = "off"
        core = Glimpse(s)
        core.migrate()
        runner = InProcessRunner(core)
        queued = CollectJobs()
        for p in photos:
            accept_path(core, p, tenant=None, enqueuer=queued)
        runner.run_batch(queued.jobs)
        queries = ["a cat", "a cup of coffee", "a rocket launch", "a person in a suit",
                   "stars in the night sky", "a page of text"]
        lat: dict[str, list[float]] = {"retrieve": [], "rerank20": [], "rerank20_explain20": []}
        follow: list[float] = []
        first: list[float] = []
        for _ in range(3):
            for q in queries:
                for name, kw in (("retrieve", {"rerank": False}),
                                 ("rerank20", {"rerank": True, "rerank_n": 20}),
                                 ("rerank20_explain20", {"rerank": True, "rerank_n": 20,
                                                         "explain": True, "explain_m": 20})):
                    t0 = time.perf_counter()
                    resp = core.search.search(SearchQuery(text=q, k=20, **kw))  # type: ignore[arg-type]
                    lat[name].append((time.perf_counter() - t0) * 1000)
                sid = core.conversations.open(SearchQuery(text=q, k=20), resp)
                first.append(lat["rerank20_explain20"][-1])
                t0 = time.perf_counter()
                core.conversations.ask(sid, "which of these has a cat?")
                core.conversations.ask(sid, "how many faces are in the first one?")
                follow.append((time.perf_counter() - t0) * 1000 / 2)
        core.close()
        out: dict[str, Any] = {"index_views": n}
        for k, xs in lat.items():
            out[f"{k}_ms"] = {"p50": _pct(xs, 50), "p95": _pct(xs, 95)}
        out["follow_up_turn_ms"] = {"p50": _pct(follow, 50), "p95": _pct(follow, 95)}
        out["follow_up_vs_first_turn"] = round(_pct(follow, 50) / max(_pct(first, 50), 1e-9), 3)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
