"""Shared fixtures for the model tests: the real cpu model, loaded once per session, and the
bundled sample photos encoded once."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from indexer.settings import ModelSettings  # noqa: E402

RETRIEVAL_SET = (
    "chelsea", "coffee", "rocket", "horse", "astronaut", "stereo_motorcycle", "brick",
    "hubble_deep_field", "page", "sign",
)


@pytest.fixture(scope="session")
def cpu_model():
    pytest.importorskip("skimage")
    from indexer.models.cpu import CpuModel

    model = CpuModel(ModelSettings(ocr="gated", torch_threads=1))
    model.load()
    return model


@pytest.fixture(scope="session")
def sample_views():
    from indexer.models.cpu import evalset

    return evalset.views(RETRIEVAL_SET)


@pytest.fixture(scope="session")
def encoded(cpu_model, sample_views):
    return {v.view_id: e for v, e in zip(sample_views, cpu_model.encode_views(sample_views),
                                         strict=True)}
