"""`glimpse` command line: serve, ingest, search, migrate, worker, bench, reindex."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parent.parent / "indexer" / "samples"


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from indexer.settings import Settings

    kw: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        kw["data_dir"] = Path(args.data_dir)
    return Settings(**kw)


def _core(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse

    core = Glimpse(_settings(args))
    core.migrate()
    return core


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app

    settings = _settings(args)
    if args.samples:
        _ingest_samples(settings)
    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _ingest_samples(settings) -> None:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse

    core = Glimpse(settings)
    core.migrate()
    try:
        if core.catalog.count_media() == 0:
            print(f"indexing {len(list(SAMPLES.glob('*.jpg')))} sample images …", flush=True)
            _ingest_paths(core, [SAMPLES], quiet=False)
    finally:
        core.close()


def _ingest_paths(core, paths: list[Path], *, quiet: bool) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    from indexer.errors import GlimpseError
    from indexer.ingest import accept_path, iter_media_files
    from indexer.jobs import InProcessRunner

    files = iter_media_files(paths)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "failed": 0, "done": 0}
    bar = tqdm(total=len(files), unit="file", disable=quiet, desc="ingest")
    names: dict[str, Path] = {}
    lock = threading.Lock()
    reported: set[str] = set()

    def on_result(job_id: str, res: dict[str, object]) -> None:  # called from the lanes
        with lock:
            reported.add(job_id)
            if res.get("status") == "done":
                counts["done"] += 1
            else:
                counts["failed"] += 1
                bar.write(f"failed {names.get(job_id, job_id)}: {res.get('error')}")
            bar.update(1)

    # the same runner `glimpse serve` uses: its lanes batch whatever is waiting, so files
    # are indexed while later ones are still being read and validated
    runner = InProcessRunner(core, on_result=on_result)
    queued: list[str] = []

    class Enqueue:
        def enqueue_ingest(self, job_id: str) -> None:
            queued.append(job_id)

    t0 = time.perf_counter()
    if files:
        with contextlib.redirect_stdout(sys.stderr):  # third-party loaders print
            core.model.load()  # here, not lazily in a lane, so stdout stays the JSON summary
    for f in files:
        before = len(queued)
        try:
            accept_path(core, f, tenant=None, enqueuer=Enqueue())
        except GlimpseError as e:
            counts["rejected"] += 1
            bar.write(f"rejected {f}: {e.message}")
            bar.update(1)
            continue
        if len(queued) == before:
            counts["duplicate"] += 1
            bar.update(1)
            continue
        counts["accepted"] += 1
        names[queued[-1]] = f
        runner.enqueue_ingest(queued[-1])
    runner.wait_idle()
    runner.stop()
    for job_id in set(names) - reported:  # a batch that crashed the lane reports nothing
        job = core.catalog.get_job(job_id)
        on_result(job_id, {"status": job.status, "error": job.error})
    runner.pipeline.maybe_flush(force=True)
    bar.close()
    if not quiet:
        dt = time.perf_counter() - t0
        print(json.dumps({**counts, "seconds": round(dt, 2)}))
    return counts


def cmd_ingest(args: argparse.Namespace) -> int:
    core = _core(args)
    try:
        counts = _ingest_paths(core, [Path(p) for p in args.paths], quiet=args.quiet)
    finally:
        core.close()
    return 1 if counts["failed"] or (counts["rejected"] and not counts["done"]) else 0


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.errors import GlimpseError
    from indexer.media.images import load_rgb
    from indexer.search import SearchQuery

    if not args.text and not args.image:
        print("give a text query or --image FILE", file=sys.stderr)
        return 2
    core = _core(args)
    try:
        image = load_rgb(args.image) if args.image else None
        q = SearchQuery(text=args.text, image=image, k=args.k, explain=args.explain,
                        explain_m=args.k)
        with contextlib.redirect_stdout(sys.stderr):  # third-party loaders print
            resp = core.search.search(q)
            sid = core.conversations.open(q, resp)
    except GlimpseError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    finally:
        core.close()
    if args.json:
        print(json.dumps({"session_id": sid, "results": [r.to_dict() for r in resp.results],
                          "no_good_match": resp.no_good_match, "message": resp.message,
                          "timings_ms": resp.timings_ms}, indent=2))
        return 0
    if resp.message:
        print(resp.message)
    for i, r in enumerate(resp.results, 1):
        when = f" @ {r.t_start:.1f}-{r.t_end:.1f}s" if r.t_start is not None else ""
        page = f" p.{r.page}" if r.page else ""
        rel = f"{r.relevance:.2f}" if r.relevance is not None else f"{r.score:.4f}"
        print(f"{i:2d}. {rel}  {r.filename or r.media_id}{page}{when}  — {r.caption}")
        for st_i, st in enumerate(r.steps or [], 1):
            print(f"      {st_i}. {st.text}")
    print(f"session: {sid}  (ask a follow-up: glimpse ask {sid} \"...\")")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from indexer.errors import GlimpseError

    core = _core(args)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # third-party loaders print
            out = core.conversations.ask(args.session, args.question)
    except GlimpseError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    finally:
        core.close()
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(out["answer"])
    for st in out["steps"]:
        print(f"  {st['n']}. {st['text']}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    core = _core(args)
    core.close()
    print("catalog at head:", core.settings.catalog_url.split("@")[-1])
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.celery_app import run_worker

    return run_worker(_settings(args), queues=args.queues, concurrency=args.concurrency)


def cmd_bench(args: argparse.Namespace) -> int:
    from indexer.bench.run import run_bench

    out = run_bench(_settings(args), quick=args.quick, only=args.only,
                    topology=args.topology)
    text = json.dumps(out, indent=2)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    from indexer.reindex import reindex

    core = _core(args)
    try:
        print(json.dumps(reindex(core), indent=2))
    finally:
        core.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="glimpse", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    def data_dir(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", default=None,
                        help="where the embedded default keeps everything (./glimpse-data)")

    sp = sub.add_parser("serve", help="run the HTTP API and web page")
    data_dir(sp)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--samples", action="store_true",
                    help="index the bundled sample images first if the catalog is empty")
    sp.set_defaults(fn=cmd_serve)

    sp = sub.add_parser("ingest", help="index files or folders")
    data_dir(sp)
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(fn=cmd_ingest)

    sp = sub.add_parser("search", help="search by text or by an example image")
    data_dir(sp)
    sp.add_argument("text", nargs="?")
    sp.add_argument("--image")
    sp.add_argument("-k", type=int, default=10)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--explain", action="store_true", help="numbered reasons per result")
    sp.set_defaults(fn=cmd_search)

    sp = sub.add_parser("ask", help="ask a follow-up question about a search's results")
    data_dir(sp)
    sp.add_argument("session")
    sp.add_argument("question")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_ask)

    sp = sub.add_parser("migrate", help="run the catalog migrations (alembic upgrade head)")
    data_dir(sp)
    sp.set_defaults(fn=cmd_migrate)

    sp = sub.add_parser("worker", help="run a Celery worker (production topology)")
    data_dir(sp)
    sp.add_argument("--queues", default="ingest,model")
    sp.add_argument("--concurrency", type=int, default=1)
    sp.set_defaults(fn=cmd_worker)

    sp = sub.add_parser("bench", help="measure speed and quality; writes JSON")
    data_dir(sp)
    sp.add_argument("--out", default=None)
    sp.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    sp.add_argument("--only", default=None, help="comma list of sections")
    sp.add_argument("--topology", default="embedded", choices=["embedded", "celery"])
    sp.set_defaults(fn=cmd_bench)

    sp = sub.add_parser("reindex", help="rebuild the vector index from the catalog")
    data_dir(sp)
    sp.set_defaults(fn=cmd_reindex)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.fn(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
