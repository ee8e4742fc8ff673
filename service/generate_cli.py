"""`glimpse generate "PROMPT" --out FILE`: make an image from what the index knows, write it,
and print the checks and the sources. Through the `glimpse serve` that owns the data dir when
one runs (like search), else in this process."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_parser(sub: Any, data_dir: Callable[[argparse.ArgumentParser], None],
               local: Callable[[argparse.ArgumentParser], None]) -> None:
    sp = sub.add_parser("generate", help="make an image from indexed concepts (with checks)")
    data_dir(sp)
    local(sp)
    sp.add_argument("prompt")
    sp.add_argument("--out", required=True, help="PNG file to write (with -n 2+: FILE-1.png...)")
    sp.add_argument("-n", type=int, default=1, help="images (default 1)")
    sp.add_argument("--size", default="512x512", help="WIDTHxHEIGHT (default 512x512)")
    sp.add_argument("--seed", type=int, default=None, help="same seed, same index: same image")
    sp.add_argument("--backend", default=None, help="cpu | diffusion | openai")
    sp.add_argument("--json", action="store_true", help="print the whole record as JSON")
    sp.set_defaults(fn=cmd_generate)


def _outputs(out: Path, n: int) -> list[Path]:
    if n == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix or '.png'}") for i in range(n)]


def cmd_generate(args: argparse.Namespace) -> int:
    from indexer.errors import GlimpseError
    from service.cli import _core, _server
    from service.remote import RemoteError

    body = {"prompt": args.prompt, "n": args.n, "size": args.size, "seed": args.seed,
            "backend": args.backend}
    try:
        client = _server(args)
        if client is not None:
            with client:
                record, images = _remote(client, body)
        else:
            record, images = _local(_core(args), body)
    except (GlimpseError, RemoteError) as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    if record["status"] != "done":
        print(f"error: {record.get('error') or record['status']}", file=sys.stderr)
        return 1
    paths = _outputs(Path(args.out), len(images))
    for p, data in zip(paths, images, strict=True):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    if args.json:
        print(json.dumps(record, indent=2, default=str))
        return 0
    for p, r in zip(paths, record["results"], strict=True):
        ok = sum(c["satisfied"] for c in r["checks"])
        print(f"{p}  ({r['media_id']}, seed {r['seed']}, {ok}/{len(r['checks'])} checks "
              f"confirmed, {r.get('attempts')} attempt(s))")
        for c in r["checks"]:
            print(f"  {'✓' if c['satisfied'] else '✗'} {c['constraint']}: {c['detail']}")
        for u in r["provenance"]:
            box = f" box {u['box']}" if u.get("box") else ""
            print(f"  from {u['media_id']} ({u['role']} '{u['concept']}', {u['cut']}{box})")
    return 0


def _local(core: Any, body: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from indexer.generation.service import (
        GenerationRequest,
        GenerationService,
        generation_dict,
    )
    from indexer.jobs import InProcessRunner

    runner = InProcessRunner(core)
    svc = GenerationService(core, runner)
    try:
        req = GenerationRequest(body["prompt"], body["n"], body["size"], body["seed"],
                                body["backend"])
        with contextlib.redirect_stdout(sys.stderr):  # third-party loaders print
            row = svc.run_now(core.settings.tenant, req)
            runner.wait_idle()  # the generated images are indexed before the process ends
        record = generation_dict(row)
        images = [core.blobs.open_path(core.catalog.get_media(m).sha256).read_bytes()
                  for m in row.media_ids or []]
        return record, images
    finally:
        svc.close()
        runner.stop()
        core.close()


def _remote(client: Any, body: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    from service.remote import RemoteError

    acc = client._call("POST", "/v1/generations", json_body=body)
    gid = acc["generation_id"]
    deadline = time.monotonic() + 600
    while True:
        record = client._call("GET", f"/v1/generations/{gid}")
        if record["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    images = []
    for mid in record.get("media_ids") or []:
        status, raw = client._request("GET", f"/v1/media/{mid}/file")
        if status != 200:
            raise RemoteError(f"could not fetch {mid}: HTTP {status}", status)
        images.append(raw)
    return record, images
