"""Where a server's memory goes: resident set size after each step of bringing up
`glimpse serve` on the embedded default and indexing 10 photos, each step in the same fresh
process (the bench process itself holds other sections' data, so it is not measured).

Steps: the interpreter; the web app and its imports (FastAPI, the service routes); the core
and catalog; the cpu model's parts one at a time (classifier, text encoder and ConSE class
vectors, OCR, face and people detectors); the vector index; ingesting 10 photos through the
in-process runner (the per-view worker threads build their own OCR/detector instances); a
text search. `server_idle` is a second fresh process that serves searches only: what a
server holds before anything is ingested, with the parts that only ingest needs left unloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_CHILD = r'''
import gc, json, os, sys, time
from pathlib import Path
import psutil

proc = psutil.Process()
steps = []

def mark(name):
    gc.collect()
    steps.append({"step": name, "rss_mb": round(proc.memory_info().rss / 2**20, 1)})

mode, data, photos = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
mark("interpreter")
from service.app import create_app
from indexer.context import Glimpse
from indexer.settings import Settings
mark("imports: web app, service, settings")
settings = Settings(data_dir=data, environment="test")
core = Glimpse(settings)
core.migrate()
app = create_app(core=core)
mark("core + catalog + app")
model = core.model
if mode == "parts":
    model.classifier.load(); mark("model: classifier (EfficientNet-Lite0)")
    model.text.load(); mark("model: text encoder (MiniLM)")
    model.load(); mark("model: ConSE vectors, OCR, faces, people, objects")
else:
    model.load(); mark("model loaded")
core.vectors.count()
mark("vector index opened")
if photos:
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner
    runner = InProcessRunner(core)
    for p in photos:
        accept_path(core, Path(p), tenant=None, enqueuer=runner)
    runner.wait_idle(); runner.stop(); runner.pipeline.maybe_flush(force=True)
    mark(f"ingested {len(photos)} photos")
from indexer.search import SearchQuery
core.search.search(SearchQuery(text="a cup of coffee", k=5))
mark("one text search")
print("MEMORY " + json.dumps(steps))
'''


def _run(mode: str, data: Path, photos: list[Path]) -> list[dict[str, Any]]:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           "HF_HUB_OFFLINE": "1", "GLIMPSE_MODEL__OCR": "gated"}
    r = subprocess.run([sys.executable, "-c", _CHILD, mode, str(data), *map(str, photos)],
                       capture_output=True, text=True, timeout=900, env=env,
                       cwd=Path(__file__).resolve().parents[1])
    line = next((x for x in r.stdout.splitlines() if x.startswith("MEMORY ")), None)
    if r.returncode != 0 or line is None:
        raise RuntimeError(f"memory child failed: {r.stderr[-2000:]}")
    steps: list[dict[str, Any]] = json.loads(line[len("MEMORY "):])
    prev = 0.0
    for s in steps:
        s["delta_mb"] = round(s["rss_mb"] - prev, 1)
        prev = s["rss_mb"]
    return steps


def bench_memory(n_images: int = 10) -> dict[str, Any]:
    from bench.photos import synth_photos

    with tempfile.TemporaryDirectory() as tmp:
        photos = synth_photos(n_images, Path(tmp) / "photos", seed=11)
        server = _run("parts", Path(tmp) / "data", photos)
        idle = _run("whole", Path(tmp) / "idle", [])
    return {
        "what": f"resident set size of one fresh process bringing up the server and "
                f"indexing {n_images} photos (MB; delta = growth at that step)",
        "server_with_ingest": server,
        "server_search_only": idle,
        "peak_after_ingest_mb": max(s["rss_mb"] for s in server),
    }


if __name__ == "__main__":
    print(json.dumps(bench_memory(), indent=2))
