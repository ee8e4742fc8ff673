"""Short-lived signed URLs for what a browser fetches without headers (<img>, <video>,
download links): `?exp=UNIX&sig=HMAC-SHA256(secret, path + "\\n" + exp)`. The path names one
media (and one view or frame of it), so a valid signature grants reading exactly that, as
that media's own tenant, until `exp`. No key ever appears in a URL."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from fastapi import Request

from indexer.errors import NotFound
from indexer.keys import Principal

SIGNABLE = re.compile(
    r"^/v1/media/(?P<media_id>[^/]{1,64})/"
    r"(?:thumbnail|file|views/\d{1,6}/thumbnail|frames/\d{1,6}/thumbnail)$")
_BUCKET_S = 600  # expiries are rounded up to 10 minutes so repeated answers reuse URLs


def _mac(secret: bytes, path: str, exp: int) -> str:
    return hmac.new(secret, f"{path}\n{exp}".encode(), hashlib.sha256).hexdigest()[:40]


def sign(path: str, secret: bytes, ttl_s: int, *, now: float | None = None) -> str:
    t = time.time() if now is None else now
    exp = (int(t + ttl_s) // _BUCKET_S + 1) * _BUCKET_S
    return f"{path}?exp={exp}&sig={_mac(secret, path, exp)}"


def verify_signed(request: Request, secret: bytes) -> Principal | None:
    """The principal a valid, unexpired signature grants: read, as the media's tenant."""
    path = request.url.path
    m = SIGNABLE.match(path)
    exp_s = request.query_params.get("exp", "")
    sig = request.query_params.get("sig", "")
    if m is None or not exp_s.isdigit() or len(exp_s) > 12:
        return None
    exp = int(exp_s)
    if exp < time.time() or not hmac.compare_digest(_mac(secret, path, exp), sig):
        return None
    core = request.app.state.core
    try:
        media = core.catalog.get_media(m.group("media_id"))
    except NotFound:
        return None
    return Principal(media.tenant, "read", "signed-url")


class Signer:
    """Builds the URLs a response hands out, signed when keys are on."""

    def __init__(self, secret: bytes | None, ttl_s: int) -> None:
        self.secret = secret
        self.ttl_s = ttl_s

    def __call__(self, path: str) -> str:
        return path if self.secret is None else sign(path, self.secret, self.ttl_s)
