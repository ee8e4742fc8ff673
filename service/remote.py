"""The CLI's client of a running `glimpse serve`: ingest, search and ask go through the one
process that owns the data dir (its models are warm, its index is the live one).

Authentication: `GLIMPSE_API_KEY` (else the server's own `GLIMPSE_ADMIN_KEY`, when the
CLI runs with the server's environment) is sent as `Authorization: Bearer KEY`.

Only the standard library (http.client): importing an HTTP client library costs a CLI call
more than the search itself (httpx with its CLI extras: ~0.35 s; a warm search ~0.1 s).
"""

from __future__ import annotations

import http.client
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# files per upload request, and bytes (the server refuses larger bodies)
BATCH_FILES = 16
BATCH_BYTES = 48 * 1024 * 1024


class RemoteError(Exception):
    """The server answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def api_key() -> str | None:
    return os.environ.get("GLIMPSE_API_KEY") or os.environ.get("GLIMPSE_ADMIN_KEY") or None


class RemoteGlimpse:
    def __init__(self, url: str, *, key: str | None = None, timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"not a server URL: {url!r}")
        self._host, self._port = parts.hostname, parts.port
        self._https = parts.scheme == "https"
        self._timeout = timeout_s
        key = key if key is not None else api_key()
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._conn is None:  # one keep-alive connection, never through a proxy
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=timeout)
        self._conn.timeout = timeout
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RemoteGlimpse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None,
                 ctype: str | None = None, timeout: float | None = None) -> tuple[int, bytes]:
        headers = dict(self._headers)
        if ctype:
            headers["Content-Type"] = ctype
        for attempt in (0, 1):  # a kept-alive connection the server closed: reconnect once
            conn = self._connection(timeout or self._timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                return r.status, r.read()
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                self.close()
                if attempt or not isinstance(e, http.client.RemoteDisconnected | BrokenPipeError
                                             | ConnectionResetError):
                    raise RemoteError(f"the server at {self.url} did not answer: {e}") from e
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, *, json_body: Any = None,
              form: dict[str, str] | None = None,
              files: list[tuple[str, str, Path]] | None = None) -> Any:
        body: bytes | None = None
        ctype: str | None = None
        if json_body is not None:
            body, ctype = json.dumps(json_body).encode(), "application/json"
        elif form is not None or files:
            body, ctype = _multipart(form or {}, files or [])
        status, raw = self._request(method, path, body, ctype)
        out = _json(raw)
        if status >= 400 and not (path == "/v1/media" and status < 500
                                  and isinstance(out, dict) and "items" in out):
            raise RemoteError(self._message(status, out, raw), status)
        return out

    def _message(self, status: int, body: Any, raw: bytes) -> str:
        err = body.get("error") if isinstance(body, dict) else None
        msg = err.get("message") if isinstance(err, dict) else None
        msg = msg or raw[:200].decode(errors="replace") or f"HTTP {status}"
        if status == 401:
            hint = ("set GLIMPSE_API_KEY to a key of this server" if not api_key()
                    else "GLIMPSE_API_KEY is not a valid key of this server")
            return f"{msg} ({hint}; the server is {self.url})"
        return str(msg)

    def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            status, _ = self._request("GET", "/health", timeout=timeout_s)
        except RemoteError:
            return False
        return status < 500

    # -- the API ---------------------------------------------------------------------------
    def search(self, *, text: str | None, image: Path | None, k: int,
               explain: bool) -> dict[str, Any]:
        if image is None:
            return self._call("POST", "/v1/search",  # type: ignore[no-any-return]
                              json_body={"text": text, "k": k, "explain": explain,
                                         "explain_m": min(k, 50)})
        data: dict[str, str] = {"k": str(k), "explain": "true" if explain else "false",
                                "explain_m": str(min(k, 50))}
        if text:
            data["text"] = text
        return self._call("POST", "/v1/search/image", form=data,  # type: ignore[no-any-return]
                          files=[("image", image.name, image)])

    def ask(self, session_id: str, question: str) -> dict[str, Any]:
        from urllib.parse import quote

        return self._call(  # type: ignore[no-any-return]
            "POST", f"/v1/sessions/{quote(session_id, safe='')}/messages",
            json_body={"question": question})

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def upload(self, files: list[Path]) -> list[dict[str, Any]]:
        """One request for these files; one item per file (accepted, duplicate or its
        error)."""
        body = self._call("POST", "/v1/media", files=[("files", f.name, f) for f in files])
        return list(body.get("items", []))

    def ingest(self, files: list[Path], *,
               on_item: Callable[[Path, dict[str, Any]], None],
               poll_s: float = 0.25, timeout_s: float = 3600.0) -> None:
        """Upload in batches, then follow every accepted job to its end. `on_item(path,
        item)` is called once per file: with the upload's item for a rejected or duplicate
        file, with the finished job (`status` done or failed) for an accepted one."""
        pending: dict[str, Path] = {}
        for batch in _batches(files):
            items = self.upload(batch)
            if len(items) != len(batch):
                raise RemoteError(f"the server answered {len(items)} items for "
                                  f"{len(batch)} files")
            for f, item in zip(batch, items, strict=True):
                if item.get("error") or item.get("duplicate") or not item.get("job_id"):
                    on_item(f, item)
                else:
                    pending[item["job_id"]] = f
            self._follow(pending, on_item, wait=False)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise RemoteError(f"{len(pending)} jobs still running after {timeout_s:.0f}s")
            time.sleep(poll_s)
            self._follow(pending, on_item, wait=True)

    def _follow(self, pending: dict[str, Path],
                on_item: Callable[[Path, dict[str, Any]], None], *, wait: bool) -> None:
        # the runner works through jobs roughly in order: the oldest few say enough
        for job_id in list(pending)[: 32 if wait else 8]:
            job = self.job(job_id)
            if job.get("status") in ("done", "failed"):
                on_item(pending.pop(job_id), job)


def _batches(files: Iterable[Path]) -> Iterator[list[Path]]:
    batch: list[Path] = []
    size = 0
    for f in files:
        n = f.stat().st_size
        if batch and (len(batch) >= BATCH_FILES or size + n > BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += n
    if batch:
        yield batch


def _multipart(form: dict[str, str], files: list[tuple[str, str, Path]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out: list[bytes] = []
    for name, value in form.items():
        out += [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                .encode(), value.encode(), b"\r\n"]
    for field, filename, path in files:
        safe = filename.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")
        out += [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{safe}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                .encode(), path.read_bytes(), b"\r\n"]
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return {}
