"""Streaming multipart upload: each file part is hashed and spooled to disk as it arrives,
and refused the moment it passes the size limit — never buffered whole in memory, and a
bad part never disturbs the other parts of the same request."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

from indexer.errors import GlimpseError, InvalidRequest, MediaTooLarge


@dataclass
class SpooledPart:
    field: str
    filename: str | None
    content_type: str | None
    path: Path | None = None
    sha256: str = ""
    size: int = 0
    error: GlimpseError | None = None
    value: bytes = b""  # small non-file fields


@dataclass
class _State:
    tmp_dir: Path
    max_bytes: int
    max_field_bytes: int = 64 * 1024
    parts: list[SpooledPart] = field(default_factory=list)
    header_field: bytes = b""
    header_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    current: SpooledPart | None = None
    fh: Any = None
    hasher: Any = None


async def parse_multipart(request: Request, tmp_dir: Path, max_bytes: int) -> list[SpooledPart]:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidRequest("expected multipart/form-data with one or more `files` parts")
    st = _State(tmp_dir=tmp_dir, max_bytes=max_bytes)

    def on_part_begin() -> None:
        st.headers = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        st.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        st.header_value += data[start:end]

    def on_header_end() -> None:
        st.headers[st.header_field.lower()] = st.header_value
        st.header_field = b""
        st.header_value = b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(st.headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        part = SpooledPart(
            field=name,
            filename=None if fn is None else Path(fn.decode("utf-8", "replace")).name,
            content_type=st.headers.get(b"content-type", b"").decode() or None,
        )
        st.current = part
        st.parts.append(part)
        if part.filename is not None:
            fd, p = tempfile.mkstemp(dir=st.tmp_dir)
            st.fh = os.fdopen(fd, "wb")
            part.path = Path(p)
            st.hasher = hashlib.sha256()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = st.current
        if part is None or part.error is not None:
            return
        chunk = data[start:end]
        part.size += len(chunk)
        if part.filename is None:
            if part.size > st.max_field_bytes:
                part.error = InvalidRequest(f"form field {part.field!r} is too long")
            else:
                part.value += chunk
            return
        if part.size > st.max_bytes:
            part.error = MediaTooLarge(
                f"{part.filename}: larger than the {st.max_bytes} byte upload limit"
            )
            _close_discard(st, part)
            return
        st.hasher.update(chunk)
        st.fh.write(chunk)

    def on_part_end() -> None:
        part = st.current
        if part is not None and part.filename is not None and st.fh is not None:
            st.fh.close()
            st.fh = None
            part.sha256 = st.hasher.hexdigest()
        st.current = None

    parser = MultipartParser(params[b"boundary"], {  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except GlimpseError:
        cleanup(st.parts)
        raise
    except Exception as e:  # noqa: BLE001 - malformed bodies are the client's problem
        cleanup(st.parts)
        raise InvalidRequest(f"malformed multipart body: {e}") from e
    finally:
        if st.fh is not None:
            st.fh.close()
    return st.parts


def _close_discard(st: _State, part: SpooledPart) -> None:
    if st.fh is not None:
        st.fh.close()
        st.fh = None
    if part.path is not None:
        part.path.unlink(missing_ok=True)
        part.path = None


def cleanup(parts: list[SpooledPart]) -> None:
    for p in parts:
        if p.path is not None:
            p.path.unlink(missing_ok=True)
