"""Pytest fixtures over indexer/models/clip/tiny.py: tiny random CLIP and SigLIP checkpoints,
built once per session into a temp dir, and a loader through production's `ClipEmbedder`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from indexer.models.clip.tiny import build_tiny_clip, build_tiny_siglip

__all__ = ["build_tiny_clip", "build_tiny_siglip", "load_clip"]


def load_clip(path: str | os.PathLike[str], device: str = "cpu", **settings: Any) -> Any:
    """A checkpoint loaded through production's loader, one torch thread, offline."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from indexer.models.clip import ClipEmbedder
    from indexer.settings import ModelSettings

    emb = ClipEmbedder(ModelSettings(embed_backend="clip", clip_model=str(path), device=device,
                                     torch_threads=1, **settings))
    emb.load()
    return emb


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))
