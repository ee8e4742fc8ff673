"""API keys: each names a tenant and a scope (read < write < admin). Stored hashed (SHA-256
of a 256-bit random secret: a slow hash adds nothing against a secret that long), shown once
at creation, compared in constant time. Also the server's URL-signing secret, kept in the
catalog so every replica signs and checks alike."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import DateTime, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from indexer.errors import InvalidRequest, NotFound
from indexer.stores.catalog import Base, Catalog, utcnow

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
KEY_PREFIX = "glk_"
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    lookup: Mapped[str] = mapped_column(String(16), index=True)  # first 16 hex of the hash
    key_hash: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ServerSecretRow(Base):
    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class Principal:
    """Who a request is: its tenant and what it may do. `key_id` None: no-key mode."""

    tenant: str
    scope: Scope
    key_id: str | None = None

    def may(self, needed: Scope) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(needed)


@dataclass
class KeyInfo:
    id: str
    tenant: str
    scope: str
    label: str
    created_at: datetime
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "tenant": self.tenant, "scope": self.scope,
                "label": self.label, "created_at": self.created_at,
                "revoked_at": self.revoked_at}


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _info(r: ApiKeyRow) -> KeyInfo:
    return KeyInfo(r.id, r.tenant, r.scope, r.label, r.created_at, r.revoked_at)


def check_tenant(tenant: str) -> str:
    if not TENANT_RE.match(tenant or ""):
        raise InvalidRequest("a tenant is 1-64 letters, digits, '.', '_' or '-', starting "
                             "with a letter or digit")
    return tenant


class KeyStore:
    """Keys in the catalog, with a short in-memory cache so a request's auth costs a dict
    lookup and one SHA-256, not a query (revocations through this store apply at once;
    through another process within `cache_s`)."""

    ENV_KEY_ID = "k_admin_from_env"

    def __init__(self, catalog: Catalog, *, cache_s: float = 5.0) -> None:
        self.catalog = catalog
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._by_lookup: dict[str, tuple[float, list[ApiKeyRow]]] = {}
        self._any: tuple[float, bool] | None = None
        self._secret: bytes | None = None

    # -- management -------------------------------------------------------------------
    def create(self, tenant: str, scope: str = "read", label: str = "") -> tuple[str, KeyInfo]:
        """(the key, shown this once; its stored info)."""
        if scope not in SCOPES:
            raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}")
        check_tenant(tenant)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        return key, self._insert("k_" + uuid.uuid4().hex[:20], key, tenant, scope, label[:200])

    def _insert(self, kid: str, key: str, tenant: str, scope: str, label: str) -> KeyInfo:
        h = _hash(key)
        row = ApiKeyRow(id=kid, lookup=h[:16], key_hash=h, tenant=tenant, scope=scope,
                        label=label, created_at=utcnow())
        with self.catalog.session() as s:
            s.add(row)
        self.invalidate()
        return _info(row)

    def ensure_env_admin(self, key: str, tenant: str) -> None:
        """The deployment's admin key (GLIMPSE_ADMIN_KEY) as a catalog key; a changed secret
        replaces the old one (rotation: update the secret, restart)."""
        h = _hash(key)
        with self.catalog.session() as s:
            row = s.get(ApiKeyRow, self.ENV_KEY_ID)
            if row is not None and row.key_hash == h and row.revoked_at is None:
                return
            if row is None:
                s.add(ApiKeyRow(id=self.ENV_KEY_ID, lookup=h[:16], key_hash=h,
                                tenant=check_tenant(tenant), scope="admin",
                                label="from GLIMPSE_ADMIN_KEY", created_at=utcnow()))
            else:
                row.lookup, row.key_hash, row.tenant, row.revoked_at = h[:16], h, tenant, None
            try:
                s.flush()
            except IntegrityError:  # another replica inserted it first: same secret
                s.rollback()
        self.invalidate()

    def list(self, tenant: str | None = None) -> list[KeyInfo]:
        with self.catalog.session() as s:
            q = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
            if tenant is not None:
                q = q.where(ApiKeyRow.tenant == tenant)
            return [_info(r) for r in s.scalars(q)]

    def revoke(self, key_id: str, *, tenant: str | None = None) -> KeyInfo:
        with self.catalog.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"key {key_id!r} not found")
            if row.revoked_at is None:
                s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id)
                          .values(revoked_at=utcnow()))
                row.revoked_at = utcnow()
            info = _info(row)
        self.invalidate()
        return info

    def invalidate(self) -> None:
        with self._lock:
            self._by_lookup.clear()
            self._any = None

    # -- checking ---------------------------------------------------------------------
    def any_keys(self) -> bool:
        """Whether keys are on: any key was ever created (a revoked one counts, so revoking
        every key locks the server rather than opening it)."""
        now = time.monotonic()
        with self._lock:
            if self._any is not None and now - self._any[0] < self.cache_s:
                return self._any[1]
        with self.catalog.session() as s:
            n = int(s.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)
        with self._lock:
            self._any = (now, n > 0)
        return n > 0

    def verify(self, key: str) -> Principal | None:
        if not key or len(key) > 256:
            return None
        h = _hash(key)
        now = time.monotonic()
        with self._lock:
            hit = self._by_lookup.get(h[:16])
        if hit is None or now - hit[0] >= self.cache_s:
            with self.catalog.session() as s:
                rows = list(s.scalars(select(ApiKeyRow).where(ApiKeyRow.lookup == h[:16])))
            s_rows = [ApiKeyRow(id=r.id, lookup=r.lookup, key_hash=r.key_hash,
                                tenant=r.tenant, scope=r.scope, revoked_at=r.revoked_at)
                      for r in rows]
            with self._lock:
                if len(self._by_lookup) > 10_000:  # junk keys must not grow memory
                    self._by_lookup.clear()
                self._by_lookup[h[:16]] = (now, s_rows)
            hit = (now, s_rows)
        found: Principal | None = None
        for r in hit[1]:
            if hmac.compare_digest(r.key_hash, h) and r.revoked_at is None:
                found = Principal(r.tenant, r.scope, r.id)  # type: ignore[arg-type]
        return found

    # -- signing ----------------------------------------------------------------------
    def signing_secret(self) -> bytes:
        if self._secret is not None:
            return self._secret
        with self.catalog.session() as s:
            row = s.get(ServerSecretRow, "url_signing")
            if row is None:
                s.add(ServerSecretRow(name="url_signing", value=secrets.token_hex(32),
                                      created_at=utcnow()))
                try:
                    s.flush()
                except IntegrityError:
                    s.rollback()
                row = s.get(ServerSecretRow, "url_signing")
            assert row is not None
            self._secret = bytes.fromhex(row.value)
        return self._secret
