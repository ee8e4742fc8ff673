"""`glimpse` command line: serve, ingest, search, generate, migrate, worker, bench, reindex,
keys."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
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


def _data_dir(args: argparse.Namespace) -> Path:
    """The data dir this command works on, without importing the settings machinery."""
    from indexer.paths import resolve_data_dir

    return resolve_data_dir(getattr(args, "data_dir", None))


def _prog() -> str:
    """How to run this command again as printed: `glimpse` when that is on PATH and is
    this one, else the path this one was started by (e.g. .venv/bin/glimpse)."""
    import shutil

    me = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if me is None or me.name != "glimpse":
        return "glimpse"
    found = shutil.which("glimpse")
    if found and Path(found).resolve() == me:
        return "glimpse"
    return shlex.quote(str(me))


def _hint_args(args: argparse.Namespace) -> str:
    """The options a printed hint must repeat to reach the same data from any shell: the
    data dir unless it is the default (GLIMPSE_DATA_DIR may not be set in another
    terminal)."""
    from indexer.paths import default_data_dir

    here = _data_dir(args)
    return "" if here == default_data_dir().resolve() else f" --data-dir {shlex.quote(str(here))}"


def _server(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A client of the `glimpse serve` that owns this data dir, or None (run here)."""
    if getattr(args, "local", False):
        return None
    from service.endpoint import read_endpoint

    data_dir = _data_dir(args)
    ep = read_endpoint(data_dir)
    if ep is None:
        return None
    from service.remote import RemoteGlimpse

    client = RemoteGlimpse(ep.url)
    if client.healthy():
        return client
    client.close()
    print(f"note: the server registered for {data_dir} (pid {ep.pid}, {ep.url}) "
          "does not answer; running here instead", file=sys.stderr)
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from indexer.context import Glimpse
    from service.app import create_app
    from service.endpoint import local_url, read_endpoint, remove_endpoint, write_endpoint
    from service.keys_cli import refuse_open_bind

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    why = refuse_open_bind(settings, args.host)
    if why:
        print(why, file=sys.stderr)
        return 2
    other = read_endpoint(settings.data_dir)
    if other is not None and other.pid != os.getpid():
        print(f"glimpse is already serving {settings.data_dir} at {other.url} "
              f"(pid {other.pid}): stop it first, or give this one another --data-dir",
              file=sys.stderr)
        return 1
    core = Glimpse(settings)  # one core: the samples and the server share one loaded model
    if args.samples:
        core.migrate()
        _ingest_samples(core)
    app = create_app(core=core)

    class Server(uvicorn.Server):
        """Publishes DATA_DIR/server.json once listening (so `glimpse ingest/search/ask`
        on this data dir go through it) and withdraws it first thing on shutdown."""

        async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
            await super().startup(sockets)
            if self.should_exit:
                return
            port = args.port
            with contextlib.suppress(Exception):
                port = self.servers[0].sockets[0].getsockname()[1]
            ep = write_endpoint(settings.data_dir, local_url(args.host, port))
            print(f"glimpse: serving {settings.data_dir} at {ep.url} (API docs {ep.url}/docs); "
                  f"from another terminal: {_prog()} search \"...\"{_hint_args(args)}",
                  file=sys.stderr, flush=True)
            # load the model and open the index now, beside the serving loop, so the first
            # search does not pay for it
            threading.Thread(target=_warm_up, args=(core,), name="glimpse-warm-up",
                             daemon=True).start()

        async def shutdown(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
            remove_endpoint(settings.data_dir)
            await super().shutdown(sockets)

    server = Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    try:
        server.run()
    finally:
        remove_endpoint(settings.data_dir)
    return 0 if server.started else 1


def _warm_up(core) -> None:  # type: ignore[no-untyped-def]
    try:
        core.model.load()
        core.vectors.count()
    except Exception:  # noqa: BLE001 - a request will report the same error properly
        logging.getLogger(__name__).warning("warming up the model failed", exc_info=True)


def _ingest_samples(core) -> None:  # type: ignore[no-untyped-def]
    if core.catalog.count_media() == 0:
        print(f"indexing {len(list(SAMPLES.glob('*.jpg')))} sample images …", flush=True)
        _ingest_paths(core, [SAMPLES], quiet=False)


def _media_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(files to ingest, files found in folders that are not media by their content).
    A file named on the command line is always tried, so its rejection is reported.
    Hidden files and folders are left out."""
    from indexer.errors import GlimpseError
    from indexer.media.sniff import sniff

    keep: list[Path] = []
    skipped: list[Path] = []
    for p in paths:
        if p.is_file():
            keep.append(p)
            continue
        if not p.is_dir():
            raise GlimpseError(f"no such file or folder: {p}")
        found = sorted(f for f in p.rglob("*") if f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        for f in found:
            try:
                with open(f, "rb") as fh:
                    kind = sniff(fh.read(4096)).kind
            except (OSError, GlimpseError):
                kind = None
            (keep if kind in ("image", "video", "document") else skipped).append(f)
    return keep, skipped


def _skipped_line(skipped: list[Path]) -> str:
    names = ", ".join(f.name for f in skipped[:3]) + (", …" if len(skipped) > 3 else "")
    return (f"skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} that "
            f"{'are' if len(skipped) != 1 else 'is'} not an image, video or PDF ({names})")


def _ingest_remote(client, paths: list[Path], *, quiet: bool) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    files, skipped = _media_files(paths)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "failed": 0, "done": 0,
              "skipped": len(skipped)}
    bar = tqdm(total=len(files), unit="file", disable=quiet, desc="ingest")
    if skipped and not quiet:
        bar.write(_skipped_line(skipped), file=sys.stderr)

    def on_item(f: Path, item: dict[str, object]) -> None:
        err = item.get("error")
        if isinstance(err, dict):
            counts["rejected"] += 1
            bar.write(f"rejected {f}: {err.get('message')}", file=sys.stderr)
        elif item.get("duplicate"):
            counts["duplicate"] += 1
        elif item.get("status") == "done":
            counts["accepted"] += 1
            counts["done"] += 1
        else:
            counts["accepted"] += 1
            counts["failed"] += 1
            bar.write(f"failed {f}: {item.get('error')}", file=sys.stderr)
        bar.update(1)

    t0 = time.perf_counter()
    client.ingest(files, on_item=on_item)
    bar.close()
    if not quiet:
        print(json.dumps({**counts, "seconds": round(time.perf_counter() - t0, 2),
                          "server": client.url}))
    return counts


def _ingest_paths(core, paths: list[Path], *, quiet: bool) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    from indexer.errors import GlimpseError
    from indexer.ingest import accept_path
    from indexer.jobs import InProcessRunner

    files, skipped = _media_files(paths)
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0, "failed": 0, "done": 0,
              "skipped": len(skipped)}
    bar = tqdm(total=len(files), unit="file", disable=quiet, desc="ingest")
    if skipped and not quiet:
        bar.write(_skipped_line(skipped), file=sys.stderr)
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
                bar.write(f"failed {names.get(job_id, job_id)}: {res.get('error')}",
                          file=sys.stderr)
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
            bar.write(f"rejected {f}: {e.message}", file=sys.stderr)
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
    from indexer.errors import GlimpseError
    from service.remote import RemoteError

    paths = [Path(p) for p in args.paths]
    try:
        client = _server(args)
        if client is not None:
            with client:
                counts = _ingest_remote(client, paths, quiet=args.quiet)
        else:
            core = _core(args)
            try:
                counts = _ingest_paths(core, paths, quiet=args.quiet)
            finally:
                core.close()
    except (GlimpseError, RemoteError) as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    return 1 if counts["failed"] or (counts["rejected"] and not counts["done"]) else 0


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.errors import GlimpseError
    from service.remote import RemoteError

    if not args.text and not args.image:
        print("give a text query or --image FILE", file=sys.stderr)
        return 2
    try:
        client = _server(args)
        if client is not None:
            with client:
                out = client.search(text=args.text, image=Path(args.image) if args.image
                                    else None, k=args.k, explain=args.explain)
        else:
            from indexer.media.images import load_rgb
            from indexer.search import SearchQuery

            core = _core(args)
            try:
                image = load_rgb(args.image) if args.image else None
                q = SearchQuery(text=args.text, image=image, k=args.k, explain=args.explain,
                                explain_m=args.k)
                with contextlib.redirect_stdout(sys.stderr):  # third-party loaders print
                    resp = core.search.search(q)
                    sid = core.conversations.open(q, resp)
            finally:
                core.close()
            out = {"session_id": sid, "results": [r.to_dict() for r in resp.results],
                   "no_good_match": resp.no_good_match, "message": resp.message,
                   "timings_ms": resp.timings_ms}
    except (GlimpseError, RemoteError) as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: out.get(k) for k in ("session_id", "results", "no_good_match",
                                                  "message", "timings_ms")}, indent=2))
        return 0
    if out.get("message"):
        print(out["message"])
    for i, r in enumerate(out["results"], 1):
        when = f" @ {r['t_start']:.1f}-{r['t_end']:.1f}s" if r.get("t_start") is not None else ""
        page = f" p.{r['page']}" if r.get("page") else ""
        rel = (f"{r['relevance']:.2f}" if r.get("relevance") is not None
               else f"{r['score']:.4f}")
        print(f"{i:2d}. {rel}  {r.get('filename') or r['media_id']}{page}{when}"
              f"  — {r.get('caption')}")
        for st in r.get("explanation") or []:
            print(f"      {st['n']}. {st['text']}")
    sid = out["session_id"]
    hint = f'{_prog()} ask {sid} "..."{_hint_args(args)}'
    print(f"session: {sid}  (ask a follow-up: {hint})")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from indexer.errors import GlimpseError
    from service.remote import RemoteError

    try:
        client = _server(args)
        if client is not None:
            with client:
                out = client.ask(args.session, args.question)
        else:
            core = _core(args)
            try:
                with contextlib.redirect_stdout(sys.stderr):  # third-party loaders print
                    out = core.conversations.ask(args.session, args.question)
            finally:
                core.close()
    except (GlimpseError, RemoteError) as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
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
    from bench.run import run_bench

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
                        help="where the embedded default keeps everything (default: "
                             "$GLIMPSE_DATA_DIR, else $XDG_DATA_HOME/glimpse, else "
                             "~/.local/share/glimpse)")

    def local(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--local", action="store_true",
                        help="run in this process even when a `glimpse serve` owns the "
                             "data dir (by default the command goes through it)")

    from service.keys_cli import add_parser as add_keys_parser

    add_keys_parser(sub, data_dir, _settings)
    from service.generate_cli import add_parser as add_generate_parser

    add_generate_parser(sub, data_dir, local)

    sp = sub.add_parser("serve", help="run the HTTP API and web page")
    data_dir(sp)
    sp.add_argument("--host", default=os.environ.get("GLIMPSE_HOST", "127.0.0.1"),
                    help="address to listen on ($GLIMPSE_HOST, default 127.0.0.1)")
    sp.add_argument("--port", type=int, default=int(os.environ.get("GLIMPSE_PORT", "8000")),
                    help="port to listen on ($GLIMPSE_PORT, default 8000; 0 picks a free one)")
    sp.add_argument("--samples", action="store_true",
                    help="index the bundled sample images first if the catalog is empty")
    sp.set_defaults(fn=cmd_serve)

    sp = sub.add_parser("ingest", help="index files or folders")
    data_dir(sp)
    local(sp)
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(fn=cmd_ingest)

    sp = sub.add_parser("search", help="search by text or by an example image")
    data_dir(sp)
    local(sp)
    sp.add_argument("text", nargs="?")
    sp.add_argument("--image")
    sp.add_argument("-k", type=int, default=10)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--explain", action="store_true", help="numbered reasons per result")
    sp.set_defaults(fn=cmd_search)

    sp = sub.add_parser("ask", help="ask a follow-up question about a search's results")
    data_dir(sp)
    local(sp)
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
