"""Alembic migrations for the catalog (SQLite and Postgres). `upgrade_head(url)` runs them
programmatically so the CLI, the API and tests share one code path with `alembic upgrade`."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config(str(HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_head(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")
