"""The running server's endpoint file: how a `glimpse` command finds the server that owns a
data dir, so every writer goes through one process.

`glimpse serve` writes `DATA_DIR/server.json` (pid, url) once it listens and removes it when
it stops. A file whose pid is gone (a server killed with SIGKILL) is stale: it is ignored and
removed. Light on purpose: the CLI reads it before importing anything heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

ENDPOINT_FILE = "server.json"


@dataclass(frozen=True)
class Endpoint:
    pid: int
    url: str
    data_dir: str
    started_at: float

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "url": self.url, "data_dir": self.data_dir,
                           "started_at": self.started_at}, indent=1)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def endpoint_path(data_dir: Path) -> Path:
    return Path(data_dir) / ENDPOINT_FILE


def read_endpoint(data_dir: Path) -> Endpoint | None:
    """The live server's endpoint for this data dir, or None (a stale file is removed)."""
    path = endpoint_path(data_dir)
    try:
        raw = json.loads(path.read_text())
        ep = Endpoint(pid=int(raw["pid"]), url=str(raw["url"]),
                      data_dir=str(raw.get("data_dir", data_dir)),
                      started_at=float(raw.get("started_at", 0)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None  # torn or foreign: not ours to trust, nor to delete
    if ep.pid != os.getpid() and not pid_alive(ep.pid):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return ep


def local_url(host: str, port: int) -> str:
    """The URL a process on this machine uses to reach a server bound to host:port."""
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def write_endpoint(data_dir: Path, url: str) -> Endpoint:
    """Atomically publish this process as the server of `data_dir`."""
    ep = Endpoint(pid=os.getpid(), url=url, data_dir=str(data_dir), started_at=time.time())
    path = endpoint_path(data_dir)
    tmp = path.with_name(f".{ENDPOINT_FILE}.{os.getpid()}")
    tmp.write_text(ep.to_json())
    os.replace(tmp, path)
    return ep


def remove_endpoint(data_dir: Path) -> None:
    """Remove the endpoint file if it is still this process's."""
    path = endpoint_path(data_dir)
    try:
        if int(json.loads(path.read_text())["pid"]) != os.getpid():
            return
        path.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass
