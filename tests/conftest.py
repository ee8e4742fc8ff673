"""Shared fixtures. Threads are pinned: oversubscribed BLAS threads made a probe here 25×
slower on the 2-core machine."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("GLIMPSE_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def cpu_model():  # type: ignore[no-untyped-def]
    """The real embedded-default model, loaded once per test session."""
    from indexer.models.cpu import CpuModel
    from indexer.settings import ModelSettings

    m = CpuModel(ModelSettings(ocr="gated", torch_threads=1))
    m.load()
    return m


@pytest.fixture()
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    from indexer.settings import Settings

    return Settings(data_dir=tmp_path / "data", environment="test")


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh database on the machine's real Postgres, dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"glimpse_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
            ), {"n": name})
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
