"""Shared fixtures for the vector-store tests: one thread for BLAS/OpenMP, small data."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import faiss  # noqa: E402
import pytest  # noqa: E402

faiss.omp_set_num_threads(1)


@pytest.fixture(autouse=True)
def _single_thread_faiss() -> None:
    faiss.omp_set_num_threads(1)
