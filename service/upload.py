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
from indexer.settings import LimitSettings
from service.guard import BodyTooLarge

# RFC 2046: 1-70 characters from this set (a longer one was a 500 once)
_BCHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")
MAX_FILENAME = 255


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
    max_files: int = 200
    max_fields: int = 50
    complete: bool = False
    parts: list[SpooledPart] = field(default_factory=list)
    header_field: bytes = b""
    header_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    current: SpooledPart | None = None
    fh: Any = None
    hasher: Any = None


def _boundary(content_type: str) -> bytes:
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidRequest("expected multipart/form-data with one or more `files` parts")
    b = params[b"boundary"]
    if not 1 <= len(b) <= 70 or not set(b) <= _BCHARS or b.endswith(b" "):
        raise InvalidRequest("malformed multipart boundary: it must be 1-70 characters "
                             "(RFC 2046)")
    return b


def _filename(raw: bytes) -> str:
    name = Path(raw.decode("utf-8", "replace").replace("\\", "/")).name.replace("\x00", "")
    if len(name) > MAX_FILENAME:  # keep the extension, it names the format
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: MAX_FILENAME - len(ext) - 1] + (f".{ext}" if ext else "")
    return name


async def parse_multipart(request: Request, tmp_dir: Path,
                          limits: LimitSettings) -> list[SpooledPart]:
    """Every part spooled (files) or kept (small fields). Refused as a whole (and nothing
    left on disk) when the body is malformed or incomplete, has too many files, or a text
    field is too long; a file over the per-file limit gets its own error."""
    st = _State(tmp_dir=tmp_dir, max_bytes=limits.max_upload_bytes,
                max_field_bytes=limits.max_field_bytes,
                max_files=limits.max_files_per_request)
    boundary = _boundary(request.headers.get("content-type", ""))

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
            field=name[:200],
            filename=None if fn is None else _filename(fn),
            content_type=st.headers.get(b"content-type", b"").decode("latin-1")[:200] or None,
        )
        st.current = part
        st.parts.append(part)
        if part.filename is not None and sum(p.filename is not None for p in st.parts) > \
                st.max_files:
            raise InvalidRequest(f"at most {st.max_files} files per request")
        if sum(p.filename is None for p in st.parts) > st.max_fields:
            raise InvalidRequest(f"at most {st.max_fields} form fields per request")
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
                raise InvalidRequest(f"form field {part.field!r} is too long "
                                     f"(over {st.max_field_bytes} bytes)")
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

    def on_end() -> None:
        st.complete = True

    def on_header_value_bounded(data: bytes, start: int, end: int) -> None:
        if len(st.header_value) + end - start > 16 * 1024:
            raise InvalidRequest("a multipart part header is over 16 KB")
        on_header_value(data, start, end)

    parser = MultipartParser(boundary, {  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_part_data": on_part_data,
        "on_part_end": on_part_end, "on_header_field": on_header_field,
        "on_header_value": on_header_value_bounded, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_end": on_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        unfinished = [p for p in st.parts if p.filename is not None and p.error is None
                      and (p.path is None or len(p.sha256) != 64)]
        if not st.complete or unfinished:
            raise InvalidRequest("incomplete multipart body: the closing boundary never "
                                 "came; nothing was stored")
    except (GlimpseError, BodyTooLarge):
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
