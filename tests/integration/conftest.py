"""Fixtures for the worker topology tests (helpers and the design notes: `stack.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.stack import REDIS_URL, Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One worker pair (ingest + model) on the machine's Redis, in its own key namespace,
    and a fresh Postgres database; tests keep apart by uploading distinct images."""
    tmp = tmp_path_factory.mktemp("stack")
    with running_stack(tmp, REDIS_URL) as st:
        yield st
