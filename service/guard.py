"""The edge every request passes first: body-size caps (Content-Length refused at once,
then counted while bytes stream in), no credentials in query strings, security headers,
and error text scrubbed of server paths. Pure ASGI, so nothing is buffered here."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexer.settings import Settings

log = logging.getLogger(__name__)

# The web page is self-contained: scripts, styles, images and media from this origin only
# (blob: for previews of a file being uploaded or searched by), never framed.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# Served user files: nothing in them may run, even when opened directly.
FILE_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
# Query parameters that would carry a credential: refused, and never written to a log.
SECRET_PARAMS = ("token", "access_token", "api_key", "apikey", "key")
_SECRET_QS = re.compile(r"(?i)\b(" + "|".join(SECRET_PARAMS) + r"|sig)=[^&\s\"]*")
# An absolute path with at least two segments (`/srv/data/blobs/..`); not preceded by a word
# character or ':' so mime types ("image/png") and URLs ("http://...") are left alone.
_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.\-]+/)+[\w.\-]*")


class BodyTooLarge(HTTPException):
    """Raised from inside `receive` when a body passes its cap while streaming; an
    HTTPException so FastAPI's body parsing passes it through unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body over the {limit} byte limit")


def body_limit(settings: Settings, method: str, path: str) -> int:
    lim = settings.limits
    if method == "POST" and path.rstrip("/") == "/v1/media":
        return lim.max_request_bytes
    if method == "POST" and path.rstrip("/") == "/v1/search/image":
        return lim.max_upload_bytes + lim.max_field_bytes * 8
    return lim.max_json_bytes


def scrub(text: str) -> str:
    """Error text as a client may see it: no filesystem paths, no secrets."""
    return _SECRET_QS.sub(lambda m: f"{m.group(1)}=…", _PATH.sub("<path>", text))


def scrub_detail(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_detail(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_detail(v) for v in value]
    return value


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": scrub(message),
                                 "detail": scrub_detail(detail or {})}}).encode()


class RedactQueryFilter(logging.Filter):
    """For uvicorn's access log: a credential that reached a URL is never written out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_SECRET_QS.sub(lambda m: f"{m.group(1)}=…", a)
                                if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = _SECRET_QS.sub(lambda m: f"{m.group(1)}=…", record.msg)
        return True


def install_log_redaction() -> None:
    for name in ("uvicorn.access", "uvicorn.error", "gunicorn.access"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryFilter) for f in lg.filters):
            lg.addFilter(RedactQueryFilter())


class GuardMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        static_page = not (path.startswith("/v1/") or path in ("/health", "/metrics",
                                                               "/openapi.json"))
        file_route = path.startswith("/v1/media/") and path.endswith("/file")

        async def send_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                add = [(b"x-content-type-options", b"nosniff"),
                       (b"referrer-policy", b"no-referrer"),
                       (b"x-frame-options", b"DENY")]
                if b"content-security-policy" not in names:
                    csp = FILE_CSP if file_route else PAGE_CSP
                    if path in ("/docs", "/redoc"):
                        csp = ""  # Swagger UI's own inline bootstrap script
                    if csp:
                        add.append((b"content-security-policy", csp.encode()))
                headers += [(k, v) for k, v in add if k not in names]
                message["headers"] = headers
            await send(message)

        qs = scope.get("query_string", b"").decode("latin-1").lower()
        params = {p.split("=", 1)[0] for p in qs.split("&") if p}
        if params & set(SECRET_PARAMS) and not static_page:
            await _respond(send_headers, 400, error_body(
                "credential_in_url", "API keys go in the `Authorization: Bearer` header, "
                "never in the URL; the request was refused and the value not logged"))
            return

        ctype = _header(scope, b"content-type")
        if ctype.lower().startswith("multipart/") and not _boundary_ok(ctype):
            await _respond(send_headers, 400, error_body(
                "invalid_request", "malformed multipart boundary: it must be 1-70 characters "
                "(RFC 2046)"))
            return
        limit = body_limit(self.settings, method, path)
        clen = _content_length(scope)
        if clen == -1:
            await _respond(send_headers, 400, error_body("invalid_request",
                                                         "malformed Content-Length header"))
            return
        if clen is not None and clen > limit:
            await _respond(send_headers, 413, error_body(
                "too_large", f"request body of {clen} bytes is over the {limit} byte limit",
                {"limit": limit}))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send_headers)


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers", []):
        if k == name:
            return str(v.decode("latin-1"))
    return ""


_BOUNDARY = re.compile(r"""(?i)boundary=(?:"([^"]*)"|([^;,\s]*))""")


def _boundary_ok(ctype: str) -> bool:
    m = _BOUNDARY.search(ctype)
    if m is None:
        return True  # no boundary at all: the route says what it expected
    b = m.group(1) if m.group(1) is not None else m.group(2)
    return 1 <= len(b) <= 70


def _content_length(scope: Scope) -> int | None:
    for k, v in scope.get("headers", []):
        if k == b"content-length":
            s = v.decode("latin-1").strip()
            if not s.isdigit() or len(s) > 18:
                return -1 if not s.isdigit() else 10**18
            return int(s)
    return None


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
