"""`glimpse keys create|list|revoke`: API keys in the catalog of a data dir (or of
GLIMPSE_CATALOG__URL). The new key is the last line of stdout, printed this once; only its
hash is stored."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Callable
from typing import Any


def _store(settings):  # type: ignore[no-untyped-def]
    from indexer.keys import KeyStore
    from indexer.stores.catalog import Catalog

    cat = Catalog(settings.catalog_url)
    cat.migrate()
    return cat, KeyStore(cat, cache_s=0)


def cmd_keys(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Any]) -> int:
    from indexer.errors import GlimpseError

    settings = settings_of(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cat, keys = _store(settings)
    try:
        if args.keys_cmd == "create":
            key, info = keys.create(args.tenant, args.scope, args.label or "")
            print(f"created key {info.id} for tenant {info.tenant!r} (scope {info.scope}); "
                  "it is shown this once, store it now:", file=sys.stderr)
            print(key)
        elif args.keys_cmd == "list":
            rows = [k.as_dict() for k in keys.list(args.tenant)]
            if args.json:
                print(json.dumps(rows, default=str, indent=2))
            for k in rows if not args.json else []:
                state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "active"
                print(f"{k['id']}  {k['tenant']:<16} {k['scope']:<6} {state:<24} {k['label']}")
        else:
            info = keys.revoke(args.id)
            print(f"revoked {info.id} (tenant {info.tenant!r})")
    except GlimpseError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    finally:
        cat.close()
    return 0


def add_parser(sub: Any, data_dir: Callable[[argparse.ArgumentParser], None],
               settings_of: Callable[[argparse.Namespace], Any]) -> None:
    sp = sub.add_parser("keys", help="create, list or revoke API keys (tenant + scope)")
    ks = sp.add_subparsers(dest="keys_cmd", required=True)
    c = ks.add_parser("create", help="a new key; printed once as the last line of stdout")
    data_dir(c)
    c.add_argument("--tenant", required=True, help="whose media this key sees and writes")
    c.add_argument("--scope", choices=["read", "write", "admin"], default="read",
                   help="read: search and view; write: also upload; admin: also keys, metrics")
    c.add_argument("--label", default="", help="a note for `keys list` (who holds it)")
    ls = ks.add_parser("list", help="every key (never the key itself)")
    data_dir(ls)
    ls.add_argument("--tenant", default=None)
    ls.add_argument("--json", action="store_true")
    rv = ks.add_parser("revoke", help="revoke a key by its id (k_...)")
    data_dir(rv)
    rv.add_argument("id")
    sp.set_defaults(fn=lambda a: cmd_keys(a, settings_of))


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_open_bind(settings: Any, host: str) -> str | None:
    """The reason `glimpse serve` must not listen on `host`, or None. Without any API key
    the server is open (every request is the default tenant's admin), so it binds loopback
    only; keys (or GLIMPSE_ADMIN_KEY) lock it, and then any address is fine."""
    if is_loopback(host) or settings.admin_key:
        return None
    cat, keys = _store(settings)
    try:
        if keys.any_keys():
            return None
    finally:
        cat.close()
    return (f"refusing to listen on {host}: this server has no API keys, so anyone who can "
            "reach it could read and change everything. Create one first:\n"
            "  glimpse keys create --tenant default --scope admin"
            + (f" --data-dir {settings.data_dir}" if settings.data_dir else "")
            + "\n(or set GLIMPSE_ADMIN_KEY), or listen on 127.0.0.1 only.")
