"""Fixtures for the worker topology tests (helpers and the design notes: `stack.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.stack import REDIS_URL, Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker pair (ingest + model) on the machine's Redis, in its own key namespace,
    and a fresh Postgres database; tests keep apart by uploading distinct images."""
    tmp = tmp_path_factory.mktemp("stack")
    with running_stack(tmp, REDIS_URL) as st:
        yield st


@pytest.fixture(scope="session")
def model_ocr_off() -> Any:
    """The real cpu model (OCR off), loaded once, for tests that run stages in-process."""
    from indexer.models.cpu import CpuModel
    from indexer.settings import ModelSettings

    m = CpuModel(ModelSettings(ocr="off", torch_threads=1))
    m.load()
    return m
