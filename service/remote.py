"""The CLI's client of a running `glimpse serve`: ingest, search and ask go through the one
process that owns the data dir (its models are warm, its index is the live one).

Authentication: `GLIMPSE_API_KEY` (else the server's own `GLIMPSE_ADMIN_KEY`, when the
CLI runs with the server's environment) is sent as `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

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
        key = key if key is not None else api_key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s,
                                  trust_env=False)  # never through a proxy: it is local

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteGlimpse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise RemoteError(f"the server at {self.url} did not answer: {e}") from e
        if r.status_code >= 400 and not (path == "/v1/media" and r.status_code < 500
                                         and "items" in _json(r)):
            raise RemoteError(self._message(r), r.status_code)
        return _json(r)

    def _message(self, r: httpx.Response) -> str:
        body = _json(r)
        err = body.get("error") if isinstance(body, dict) else None
        msg = err.get("message") if isinstance(err, dict) else None
        msg = msg or (r.text[:200] if r.text else f"HTTP {r.status_code}")
        if r.status_code == 401:
            hint = ("set GLIMPSE_API_KEY to a key of this server" if not api_key()
                    else "GLIMPSE_API_KEY is not a valid key of this server")
            return f"{msg} ({hint}; the server is {self.url})"
        return msg

    def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            r = self._http.get("/health", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return r.status_code < 500

    # -- the API ---------------------------------------------------------------------------
    def search(self, *, text: str | None, image: Path | None, k: int,
               explain: bool) -> dict[str, Any]:
        if image is None:
            return self._call("POST", "/v1/search",  # type: ignore[no-any-return]
                              json={"text": text, "k": k, "explain": explain,
                                    "explain_m": min(k, 50)})
        data: dict[str, str] = {"k": str(k), "explain": "true" if explain else "false",
                                "explain_m": str(min(k, 50))}
        if text:
            data["text"] = text
        with open(image, "rb") as fh:
            return self._call("POST", "/v1/search", data=data,  # type: ignore[no-any-return]
                              files={"image": (image.name, fh)})

    def ask(self, session_id: str, question: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/sessions/{session_id}/messages",  # type: ignore[no-any-return]
                          json={"question": question})

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def upload(self, files: list[Path]) -> list[dict[str, Any]]:
        """One request for these files; one item per file (accepted, duplicate or its
        error)."""
        handles = [open(f, "rb") for f in files]  # noqa: SIM115 - closed below
        try:
            body = self._call("POST", "/v1/media",
                              files=[("files", (f.name, h)) for f, h in zip(files, handles,
                                                                             strict=True)])
        finally:
            for h in handles:
                h.close()
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


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return {}
