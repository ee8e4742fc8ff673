"""Where things live on disk by default. Kept free of heavy imports: the CLI resolves the
data dir with it before deciding whether to talk to a running server."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """Where the embedded default keeps everything when neither GLIMPSE_DATA_DIR nor
    --data-dir says: $XDG_DATA_HOME/glimpse, else ~/.local/share/glimpse (always absolute,
    so every command finds the same index wherever it is run from)."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "glimpse"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--data-dir, else $GLIMPSE_DATA_DIR, else the default; absolute. The same answer
    `Settings().data_dir` gives."""
    raw = explicit or os.environ.get("GLIMPSE_DATA_DIR") or default_data_dir()
    return Path(raw).expanduser().resolve()
