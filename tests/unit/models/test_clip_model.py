"""The clip embed backend on tiny random CLIP and SigLIP checkpoints (clip_fixture.py), loaded
through production's loader, offline. Random weights mean nothing, so these tests assert the
contract (shapes, unit norm, determinism, batch-size invariance, one space for text and image,
identity and errors), the checkpoint's own forward pass as the reference for that space, and
the zero-shot tagging mechanism on vectors whose right answer is known."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.domain import Description, ViewInput
from indexer.errors import ModelUnavailable
from indexer.models.base import VisionLanguageModel
from indexer.settings import ModelSettings, Settings

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import clip_fixture  # noqa: E402

tiny_clip_dir = clip_fixture.tiny_clip_dir
tiny_siglip_dir = clip_fixture.tiny_siglip_dir
torch.set_num_threads(1)

KINDS = ("clip", "siglip")


def _images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    sizes = [(40, 60), (64, 48), (32, 32), (90, 70)]
    return [Image.fromarray(rng.integers(0, 255, (*sizes[i % 4], 3), dtype=np.uint8))
            for i in range(n)]


@pytest.fixture(scope="module", params=KINDS)
def ckpt(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"tiny_{request.param}_dir")


@pytest.fixture(scope="module")
def emb(ckpt: Path) -> Any:
    return clip_fixture.load_clip(ckpt, batch_size=16)


def test_identity_and_space_known_before_loading(ckpt: Path, emb: Any) -> None:
    from indexer.models.clip import ClipEmbedder

    other = ClipEmbedder(ModelSettings(embed_backend="clip", clip_model=str(ckpt)))
    assert other.model_id == emb.model_id and other._model is None
    assert emb.model_id.startswith(f"clip:{ckpt.name}@local:")
    dim = 32 if "siglip" in ckpt.name else 16
    assert other.spaces == {"semantic": dim}


def test_model_id_changes_with_weights(tiny_clip_dir: Path, tiny_siglip_dir: Path,
                                       tmp_path: Path) -> None:
    from indexer.models.clip import ClipEmbedder

    def mid(p: Path) -> str:
        return ClipEmbedder(ModelSettings(embed_backend="clip", clip_model=str(p))).model_id

    seed1 = clip_fixture.build_tiny_clip(tmp_path / "tiny-clip", seed=1)
    assert len({mid(tiny_clip_dir), mid(seed1), mid(tiny_siglip_dir)}) == 3


def test_unavailable_checkpoints_say_why(tmp_path: Path) -> None:
    from indexer.models.clip import ClipEmbedder

    with pytest.raises(ModelUnavailable, match="CLIP_MODEL"):
        ClipEmbedder(ModelSettings(embed_backend="clip"))
    with pytest.raises(ModelUnavailable, match="not a checkpoint folder"):
        _ = ClipEmbedder(ModelSettings(clip_model=str(tmp_path / "nope"))).model_id
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="config.json missing"):
        _ = ClipEmbedder(ModelSettings(clip_model=str(tmp_path / "empty"))).model_id
    # a hub id on a machine without the hub (HF_HUB_OFFLINE=1) and not in the cache
    with pytest.raises(ModelUnavailable, match="local checkpoint folder"):
        _ = ClipEmbedder(ModelSettings(clip_model="nobody/no-such-clip-xyz")).model_id


def test_hub_id_resolves_from_the_cache_and_names_its_commit(
        tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id on a machine that downloaded it once (here: a hand-made Hugging Face cache,
    HF_HUB_OFFLINE=1): loaded from the cached snapshot, its space named by id and commit."""
    import shutil

    import huggingface_hub

    from indexer.models.clip import ClipEmbedder

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-clip"
    shutil.copytree(tiny_clip_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    e = ClipEmbedder(ModelSettings(embed_backend="clip", clip_model="acme/tiny-clip",
                                   torch_threads=1, clip_runtime="torch"))
    local = ClipEmbedder(ModelSettings(embed_backend="clip", clip_model=str(tiny_clip_dir)))
    assert e.model_id.startswith("clip:acme-tiny-clip@0123456789ab:")
    assert e.model_id.split(":")[-1] == local.model_id.split(":")[-1]  # same weights
    assert e.revision == commit and e.path == repo / "snapshots" / commit
    assert e.embed_texts(["a cat"]).shape == (1, 16)


def test_texts_shape_norm_determinism_and_batch_size(ckpt: Path, emb: Any) -> None:
    texts = ["a red car", "the cat sits on the sofa in the park", "a", "pizza " * 200]
    a = emb.embed_texts(texts)
    assert a.shape == (4, emb.dim) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, emb.embed_texts(texts))
    one = clip_fixture.load_clip(ckpt, batch_size=1)
    np.testing.assert_allclose(a, one.embed_texts(texts), atol=1e-5)  # padding moves nothing
    assert not np.allclose(a[0], a[1], atol=1e-4)
    assert emb.embed_texts([]).shape == (0, emb.dim)


def test_images_shape_norm_determinism_and_batch_size(ckpt: Path, emb: Any) -> None:
    ims = _images(5)
    a = emb.embed_images(ims)
    assert a.shape == (5, emb.dim) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, emb.embed_images(ims))
    one = clip_fixture.load_clip(ckpt, batch_size=2)
    np.testing.assert_allclose(a, one.embed_images(ims), atol=1e-5)
    assert not np.allclose(a[0], a[1], atol=1e-4)
    grey = emb.embed_images([ims[0].convert("L")])  # any mode is converted to RGB
    np.testing.assert_allclose(np.linalg.norm(grey, axis=1), 1.0, atol=1e-5)


def test_text_and_image_share_the_checkpoints_own_space(ckpt: Path, emb: Any) -> None:
    """Our vectors reproduce the checkpoint's own image-text logits (its forward pass):
    the cosine between a text and an image vector is the space the model was trained in."""
    from transformers import AutoModel, AutoProcessor

    ims, texts = _images(3, seed=4), ["a cat", "a photo of a dog"]
    proc = AutoProcessor.from_pretrained(str(ckpt))
    model = AutoModel.from_pretrained(str(ckpt)).eval()
    pad = "max_length" if emb.pad_to_max else True
    inputs = proc(text=texts, images=ims, padding=pad, max_length=emb.max_length,
                  truncation=True, return_tensors="pt")
    with torch.no_grad():
        ref = model(**inputs).logits_per_image.numpy()
    ours = emb.logit_scale * (emb.embed_images(ims) @ emb.embed_texts(texts).T)
    ours = ours + (emb.logit_bias or 0.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_onnx_and_torch_runtimes_agree(ckpt: Path, tmp_path: Path) -> None:
    onnx = clip_fixture.load_clip(ckpt, clip_runtime="onnx", cache_dir=str(tmp_path))
    plain = clip_fixture.load_clip(ckpt, clip_runtime="torch")
    assert onnx.runtime == {"image": "onnxruntime", "text": "onnxruntime"}
    assert plain.runtime == {"image": "torch", "text": "torch"}
    assert onnx.model_id == plain.model_id  # a runtime, not another space
    ims, texts = _images(3, seed=7), ["a cat", "two dogs in the park with a red ball", "a"]
    np.testing.assert_allclose(onnx.embed_images(ims), plain.embed_images(ims), atol=1e-5)
    np.testing.assert_allclose(onnx.embed_texts(texts), plain.embed_texts(texts), atol=1e-5)
    assert list((tmp_path / "onnx").glob("clip-*.onnx"))  # exported once into the cache


def test_zero_shot_tags_name_the_label_a_vector_points_at(emb: Any, tmp_path: Path) -> None:
    from indexer.models.clip.tags import ZeroShotTagger

    tagger = ZeroShotTagger(emb, tmp_path)
    lab = tagger.label_embeddings
    assert lab.shape == (len(tagger.labels), emb.dim)
    assert "person" in tagger.labels and "tabby" in tagger.labels
    assert list(tmp_path.glob("clip-tags-*.npy"))  # built once, cached
    np.testing.assert_array_equal(ZeroShotTagger(emb, tmp_path).label_embeddings, lab)
    emb_scale = emb.logit_scale
    try:
        emb.logit_scale = 2000.0  # a sharp zero-shot classifier over these random vectors
        k = tagger.labels.index("tabby")
        (res,) = tagger.analyse(lab[k:k + 1])
        assert res.tags[0].label == "tabby" and res.tags[0].source == "classifier"
        assert res.probs.sum() == pytest.approx(1.0, abs=1e-4)
        hier = [t.label for t in res.tags if t.source == "hierarchy"]
        assert "cat" in hier and all(t.score >= 0.5 for t in res.tags if t.source == "hierarchy")
        assert res.sd > 0 and -1.0 <= res.mu <= 1.0
    finally:
        emb.logit_scale = emb_scale


# --------------------------------------------------------------------- with a describer
@pytest.fixture(scope="module")
def clip_model(tiny_clip_dir: Path, cpu_model: Any, tmp_path_factory: Any) -> Any:
    from indexer.models.clip import ClipModel

    return ClipModel(clip_fixture.load_clip(tiny_clip_dir), cpu_model,
                     tmp_path_factory.mktemp("clip-cache"))


def _sign() -> Image.Image:
    from PIL import ImageDraw, ImageFont

    im = Image.new("RGB", (640, 480), (250, 250, 245))
    ImageDraw.Draw(im).text((150, 190), "OPEN", fill=(10, 10, 10),
                            font=ImageFont.load_default(size=110))
    return im


def test_clip_model_protocol_views_and_descriptions(clip_model: Any) -> None:
    assert isinstance(clip_model, VisionLanguageModel)
    assert clip_model.spaces == {"semantic": 16} and clip_model.generative is False
    views = [ViewInput("sign", _sign()), *[ViewInput(f"r{i}", im)
                                             for i, im in enumerate(_images(2))]]
    enc = clip_model.encode_views(views)
    q = clip_model.embed_query_images(views)
    for e, qv in zip(enc, q, strict=True):
        assert set(e.vectors) == {"semantic"}
        np.testing.assert_allclose(e.vectors["semantic"], qv["semantic"], atol=1e-5)
        d = e.description
        assert d.extra["tagger"] == clip_model.model_id
        assert d.extra["clip"]["model"] == clip_model.model_id
        # tags from the zero-shot vocabulary only, never the ImageNet classifier's
        labels = set(clip_model.tagger.labels)
        assert all(t.label in labels for t in d.tags if t.source == "classifier")
    sign = enc[0].description
    assert "OPEN" in sign.ocr_text.upper() and "OPEN" in sign.caption  # the describer's OCR
    assert clip_model.embed_texts(["a cat"]).shape == (1, 16)


def test_score_is_calibrated_and_needs_no_pixels(clip_model: Any) -> None:
    view = ViewInput("s", _sign())
    d = clip_model.describe(view)
    blank = ViewInput("s", Image.new("RGB", (1, 1)))  # what search hands an evidence model
    s = clip_model.score("a red car", blank, d)
    assert 0.0 <= s <= 1.0 and s == clip_model.score("a red car", blank, d)
    # stored evidence and the pixels agree (float16 storage)
    stale = Description(caption=d.caption, tags=d.tags, ocr=d.ocr, objects=d.objects)
    assert clip_model.score("a red car", view, stale) == pytest.approx(s, abs=2e-3)
    # OCR words that spell the query make it relevant whatever the random weights say
    assert clip_model.score("open", blank, d) >= max(0.9, s)
    # no vector of this space and no pixels: the describer's evidence score
    assert clip_model.score("open", blank, stale) == pytest.approx(
        clip_model.describer.score("open", blank, stale))
    rel = clip_model.similarity_relevance("semantic", [1.0, 0.72, 0.2])
    assert rel[0] > 0.95 and rel[1] == pytest.approx(0.5) and rel[2] < 0.01


def test_glm_describer_keeps_its_captions_and_scores(tiny_clip_dir: Path,
                                                     tmp_path: Path) -> None:
    """With a generative describer (the glm backend's tiny random checkpoint): its generated
    caption stays, CLIP adds the tags and the vectors, and reranking is the generator's."""
    import glm_fixture

    from indexer.models.clip import ClipModel

    glm = glm_fixture.load_tiny_glm(glm_fixture.build_tiny_glm(tmp_path / "glm"),
                                    max_new_tokens=4)
    m = ClipModel(clip_fixture.load_clip(tiny_clip_dir), glm, tmp_path / "cache")
    assert m.generative is True and m.generator is glm and m.spaces == {"semantic": 16}
    view = ViewInput("g", _images(1, seed=9)[0])
    (enc,) = m.encode_views([view])
    (own,) = glm.encode_views([view])
    assert enc.description.caption == own.description.caption  # the generated caption
    assert enc.description.extra["tagger"] == m.model_id
    assert set(enc.vectors) == {"semantic"} and enc.vectors["semantic"].shape == (16,)
    assert m.score("a red car", view, enc.description) == pytest.approx(
        glm.score("a red car", view, enc.description))


def test_factory_puts_clip_beside_each_describe_backend(tiny_clip_dir: Path) -> None:
    from indexer.models import build_model
    from indexer.models.clip import ClipModel
    from indexer.models.composite import CompositeModel
    from indexer.models.cpu import CpuModel

    m = build_model(Settings(model=ModelSettings(embed_backend="clip",
                                                 clip_model=str(tiny_clip_dir))))
    assert isinstance(m, ClipModel) and isinstance(m.describer, CpuModel)
    assert m.model_id.startswith("clip:")
    o = build_model(Settings(model=ModelSettings(
        backend="openai", base_url="http://127.0.0.1:9/v1", embed_backend="clip",
        clip_model=str(tiny_clip_dir))))
    assert isinstance(o, CompositeModel) and isinstance(o.embedder, ClipModel)
    assert o.model_id == m.model_id and o.spaces == {"semantic": 16}
    assert isinstance(build_model(Settings()), CpuModel)  # the default is unchanged
