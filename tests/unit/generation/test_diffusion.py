"""The diffusion backend's real code path (diffusers' Stable Diffusion pipelines, loaded from a
`save_pretrained` folder) on a tiny randomly initialised pipeline built from configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.errors import ModelUnavailable
from indexer.generation.base import Generated, SourceUse


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from indexer.generation.tiny_diffusion import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


class _Composition:
    """A grounding backend answering one fixed composition (the seam the cpu backend fills)."""

    name = "cpu"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, tuple[int, int]]] = []

    def generate(self, prompt: str, seed: int, *, size: tuple[int, int] = (512, 512),
                 tenant: str = "default") -> Generated:
        self.calls.append((prompt, seed, size))
        img = Image.new("RGB", size, (240, 240, 240))
        img.paste((200, 120, 40), (4, 20, size[0] // 2, size[1] - 4))
        return Generated(img, "cpu", {}, [SourceUse("object", "cat", "m_1", "m_1:0",
                                                    [0, 0, 10, 10], [4, 20, 32, 60], "alpha")])


def test_text_to_image_is_deterministic_by_seed(tiny_pipeline: Path) -> None:
    from indexer.generation.diffusion import DiffusionGenerator

    g = DiffusionGenerator(str(tiny_pipeline), steps=2)
    a = g.generate("a cat next to a dog", 5, size=(64, 70))
    b = g.generate("a cat next to a dog", 5, size=(64, 70))
    c = g.generate("a cat next to a dog", 6, size=(64, 70))
    assert a.image.size == (64, 64)  # rounded down to the VAE's multiple of 8
    assert a.backend == "diffusion" and a.provenance == []
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))
    assert np.asarray(a.image).std() > 0  # it decoded latents, not a blank


def test_grounded_runs_img2img_from_the_composition(tiny_pipeline: Path) -> None:
    from indexer.generation.diffusion import DiffusionGenerator

    comp = _Composition()
    g = DiffusionGenerator(str(tiny_pipeline), grounding=comp, steps=4)
    out = g.generate("a cat next to a dog", 9, size=(64, 64))
    assert comp.calls == [("a cat next to a dog", 9, (64, 64))]
    assert [p.role for p in out.provenance] == ["exemplar"]
    assert out.provenance[0].media_id == "m_1"
    assert any("img2img" in n for n in out.notes)
    text_only = DiffusionGenerator(str(tiny_pipeline), steps=4).generate(
        "a cat next to a dog", 9, size=(64, 64))
    assert not np.array_equal(np.asarray(out.image), np.asarray(text_only.image))


def test_checks_come_from_the_index_model_and_free_text_is_not_checked(
        tiny_pipeline: Path, cpu_model) -> None:  # type: ignore[no-untyped-def]
    from indexer.generation.diffusion import DiffusionGenerator

    g = DiffusionGenerator(str(tiny_pipeline), model=cpu_model, steps=2)
    out = g.generate("two dogs left of a cat", 1, size=(64, 64))
    kinds = [(c.kind, c.constraint) for c in out.checks]
    assert kinds == [("count", "2 dog"), ("count", "1 cat"), ("relation", "dog left of cat")]
    assert not any(c.satisfied for c in out.checks)  # random weights draw no dogs
    free = g.generate("the of a", 1, size=(64, 64))
    assert free.checks == [] and any("nothing was checked" in n for n in free.notes)


def test_missing_path_is_a_clear_503(settings) -> None:  # type: ignore[no-untyped-def]
    from indexer.context import Glimpse
    from indexer.generation.diffusion import DiffusionGenerator

    with pytest.raises(ModelUnavailable, match="DIFFUSION_PATH"):
        DiffusionGenerator.from_settings(Glimpse(settings), settings.generation)
    broken = DiffusionGenerator(str(settings.data_dir / "nothing-here"), steps=1)
    with pytest.raises(ModelUnavailable, match="cannot load"):
        broken.generate("a cat", 0, size=(64, 64))
