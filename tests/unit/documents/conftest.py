"""Shared fixtures: one OCR engine for the whole package, cached by image content so the
same rendered fixture is read once however many tests use it."""

from __future__ import annotations

import hashlib
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from indexer.domain import OcrLine  # noqa: E402


class CachedOcr:
    def __init__(self) -> None:
        from indexer.models.cpu.ocr import OcrEngine

        self.engine = OcrEngine(threads=1)
        self.cache: dict[str, list[OcrLine]] = {}
        self.calls = 0

    def read(self, image: Image.Image) -> list[OcrLine]:
        rgb = image.convert("RGB")
        key = hashlib.sha1(rgb.tobytes() + repr(rgb.size).encode()).hexdigest()
        if key not in self.cache:
            self.calls += 1
            self.cache[key] = self.engine.read(rgb)
        return list(self.cache[key])


@pytest.fixture(scope="session")
def ocr() -> CachedOcr:
    return CachedOcr()
