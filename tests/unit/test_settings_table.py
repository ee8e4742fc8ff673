"""The README's settings table is the one scripts/settings_table.py generates from the
settings class: adding, removing or re-commenting a setting without regenerating fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_current() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "settings_table.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_table_lists_every_setting_and_the_port() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import settings_table  # type: ignore[import-not-found]

    from indexer.settings import Settings

    table = settings_table.render()
    for name, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub is None:
            assert f"`GLIMPSE_{name.upper()}`" in table
        else:
            for s in sub:
                assert f"`GLIMPSE_{name.upper()}__{s.upper()}`" in table
    assert "`GLIMPSE_PORT`" in table and "--port" in table
