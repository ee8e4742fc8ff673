"""The glm backend end to end on a tiny random Glm4vMoe checkpoint (see glm_fixture.py).

A random model's words mean nothing: these tests assert shapes, types, normalisation,
determinism, batching invariance, the vision cache, routing and the parsing paths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from indexer.domain import Answer, Description, Turn, ViewInput
from indexer.errors import InvalidRequest, ModelUnavailable
from indexer.models.base import VisionLanguageModel
from indexer.settings import ModelSettings

# tests/ is not a package: make the fixture module importable the same way for pytest
# (importlib mode) and mypy
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import glm_fixture  # noqa: E402
from glm_fixture import TINY_TEXT  # noqa: E402

# the session fixtures (tiny checkpoint built once, loaded through production's loader)
tiny_glm_dir = glm_fixture.tiny_glm_dir
tiny_glm = glm_fixture.tiny_glm

torch.set_num_threads(1)
K = int(TINY_TEXT["num_experts_per_tok"])
E = int(TINY_TEXT["n_routed_experts"])


def _views(n: int, seed: int = 0, prefix: str = "v") -> list[ViewInput]:
    rng = np.random.default_rng(seed)
    sizes = [(96, 128), (140, 100), (64, 64), (120, 160)]
    return [
        ViewInput(
            f"{prefix}{i}",
            Image.fromarray(rng.integers(0, 255, (*sizes[i % 4], 3), dtype=np.uint8)),
        )
        for i in range(n)
    ]


def _tower_counter(model) -> tuple[list[int], Any]:
    calls = [0]

    def hook(*_):
        calls[0] += 1

    handle = model._model.model.visual.register_forward_hook(hook)
    return calls, handle


def test_protocol_identity_and_spaces(tiny_glm) -> None:
    assert isinstance(tiny_glm, VisionLanguageModel)
    assert tiny_glm.spaces == {"semantic": TINY_TEXT["hidden_size"]}
    assert tiny_glm.model_id.startswith("glm:Glm4vMoeForConditionalGeneration:h64:")


def test_model_id_is_known_before_loading_and_stable(tiny_glm, tiny_glm_dir) -> None:
    from indexer.models.glm import GlmModel

    other = GlmModel(ModelSettings(backend="glm", path=str(tiny_glm_dir), device="cpu"))
    assert other.model_id == tiny_glm.model_id
    assert other.spaces == tiny_glm.spaces


def test_model_id_changes_with_weights(tiny_glm, tmp_path) -> None:
    from indexer.models.glm import GlmModel

    other = glm_fixture.build_tiny_glm(tmp_path / "seed1", seed=1)
    assert GlmModel(ModelSettings(backend="glm", path=str(other))).model_id != tiny_glm.model_id


def test_missing_checkpoint_is_model_unavailable(tmp_path) -> None:
    from indexer.models.glm import GlmModel

    with pytest.raises(ModelUnavailable):
        GlmModel(ModelSettings(backend="glm", path=str(tmp_path / "nope"))).load()
    with pytest.raises(ModelUnavailable):
        GlmModel(ModelSettings(backend="glm", path=None)).load()


def test_embed_texts_shape_norm_determinism_and_batching(tiny_glm) -> None:
    texts = ["a red car", "the cat sits on the mat, the dog runs in the park", "yes"]
    a = tiny_glm.embed_texts(texts)
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a, tiny_glm.embed_texts(texts))
    singles = np.concatenate([tiny_glm.embed_texts([t]) for t in texts])
    np.testing.assert_allclose(a, singles, atol=2e-4)  # left padding does not move a vector
    assert not np.allclose(a[0], a[1], atol=1e-3)
    assert tiny_glm.embed_texts([]).shape == (0, 64)


def test_encode_views_and_query_images_share_the_semantic_space(tiny_glm) -> None:
    views = _views(3, seed=1, prefix="enc")
    enc = tiny_glm.encode_views(views)
    assert len(enc) == 3
    for e in enc:
        v = e.vectors["semantic"]
        assert set(e.vectors) == {"semantic"}
        assert v.shape == (64,)
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
        assert isinstance(e.description, Description)
        assert isinstance(e.description.caption, str)
    q = tiny_glm.embed_query_images(views)
    for e, qv in zip(enc, q, strict=True):
        np.testing.assert_allclose(e.vectors["semantic"], qv["semantic"], atol=2e-4)
    single = tiny_glm.embed_query_images([views[1]])[0]["semantic"]
    np.testing.assert_allclose(single, q[1]["semantic"], atol=2e-4)  # batch invariant
    assert not np.allclose(q[0]["semantic"], q[1]["semantic"], atol=1e-3)


def test_score_is_a_probability_and_deterministic(tiny_glm) -> None:
    (view,) = _views(1, seed=2, prefix="score")
    s = tiny_glm.score("a red car", view, None)
    assert 0.0 <= s <= 1.0
    assert s == tiny_glm.score("a red car", view, None)
    assert s != tiny_glm.score("something else entirely", view, Description(caption="a cat"))


def test_vision_cache_reuses_features_and_changes_nothing(tiny_glm) -> None:
    views = _views(2, seed=3, prefix="cache")
    tiny_glm.vision_cache.clear()
    calls, handle = _tower_counter(tiny_glm)
    try:
        first = tiny_glm.answer("What is in these images?", views, [], thinking=False)
        assert calls[0] == 1
        assert first.debug["vision_cache"] == {
            "hits": 0,
            "misses": 2,
            "tower_seconds": first.debug["vision_cache"]["tower_seconds"],
        }
        hits_before = tiny_glm.vision_cache.hits
        second = tiny_glm.answer("What is in these images?", views, [], thinking=False)
        assert calls[0] == 1  # the vision tower did not run again
        assert second.debug["vision_cache"]["hits"] == 2
        assert second.debug["vision_cache"]["misses"] == 0
        assert tiny_glm.vision_cache.hits == hits_before + 2
        assert second.debug["raw"] == first.debug["raw"]  # same features, same greedy output
        # a cached score equals an uncached one
        cached = tiny_glm.score("a car", views[0], None)
        tiny_glm.vision_cache.clear()
        assert tiny_glm.score("a car", views[0], None) == pytest.approx(cached, abs=1e-6)
        # the same view id with other pixels is not served stale features
        changed = ViewInput(views[0].view_id, views[1].image)
        tower_before = calls[0]
        tiny_glm.score("a car", changed, None)
        assert calls[0] == tower_before + 1
    finally:
        handle.remove()


def test_answer_with_thinking_has_steps_and_routing(tiny_glm) -> None:
    views = _views(2, seed=4, prefix="ans")
    a = tiny_glm.answer("Which image shows a car?", views, [Description("a car"), Description("")])
    assert isinstance(a, Answer)
    assert a.debug["thinking"] is True
    assert a.steps, a.debug["raw"]  # the template opens <think>: output is reasoning
    assert all(isinstance(s.text, str) and s.text for s in a.steps)
    assert set(a.refs) <= {"ans0", "ans1"}
    routing = a.debug["routing"]
    assert routing["moe_layers"] == [1, 2]  # layer 0 is dense: no router, no entry
    assert set(routing["layers"]) == {1, 2}
    for layer in routing["layers"].values():
        assert len(layer["histogram"]) == E
        assert sum(layer["histogram"]) == layer["tokens"] * K
        assert len(layer["top_experts"]) == K
    trace = tiny_glm.last_routing_trace()
    assert set(trace) == {1, 2}
    for idx, w in trace.values():
        assert idx.shape[1] == K and w.shape == idx.shape
        assert int(idx.min()) >= 0 and int(idx.max()) < E
        assert torch.all(w > 0)
        torch.testing.assert_close(w.sum(1), torch.ones(w.shape[0]), atol=1e-4, rtol=0)


def test_answer_without_thinking_and_multi_turn(tiny_glm) -> None:
    views = _views(1, seed=5, prefix="turn")
    history = [Turn("user", "What is this?"), Turn("assistant", "A car.")]
    a = tiny_glm.answer("What colour is it?", views, [], history, thinking=False)
    assert a.debug["thinking"] is False
    assert a.steps == []
    assert a.debug["prompt_tokens"] > 0
    prompt = tiny_glm.inputs.render(
        [{"role": t.role, "content": t.text} for t in history], thinking=False
    )
    assert "A car." in prompt and "<think></think>" in prompt


def test_routing_counts_accumulate_for_scraping(tiny_glm) -> None:
    before = tiny_glm.routing_counts()
    assert set(before) == {1, 2}
    tiny_glm.embed_texts(["count me"])
    after = tiny_glm.routing_counts()
    for layer in (1, 2):
        assert len(after[layer]) == E
        assert sum(after[layer]) > sum(before[layer])
    text = tiny_glm.metrics_text()
    assert 'glimpse_glm_expert_tokens_total{layer="1",expert="0"}' in text
    assert "glimpse_glm_vision_cache_hits_total" in text
    assert 'layer="0"' not in text


def test_video_answer_with_three_frames_and_one(tiny_glm) -> None:
    views = _views(3, seed=6, prefix="vid")
    frames = [(0.0, views[0].image), (1.5, views[1].image), (3.0, views[2].image)]
    a = tiny_glm.answer_video("What happens?", frames, thinking=False)
    assert isinstance(a, Answer)
    (video,) = a.debug["video"]
    assert video["frames_in"] == 3 and video["frames_packed"] == 4  # odd count: last repeated
    assert video["timestamps"] == [0.0, 3.0]  # one per temporal patch of two frames
    assert a.debug["frame_times"] == [0.0, 1.5, 3.0]
    one = tiny_glm.answer_video("And this?", frames[:1], thinking=False)
    assert one.debug["video"][0]["frames_packed"] == 2  # shorter than the temporal patch
    with pytest.raises(InvalidRequest):
        tiny_glm.answer_video("nothing", [])


def test_video_token_types_are_two_inside_the_video_span(tiny_glm) -> None:
    frames = [(0.0, _views(1)[0].image), (1.0, _views(1, seed=9)[0].image)]
    inputs = tiny_glm.inputs
    prompt = inputs.render(
        [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "q"}],
            }
        ],
        thinking=False,
    )
    built = inputs.build([prompt], [[_views(1, seed=7)[0].image]], [[frames]])
    ids = built.tensors["input_ids"][0]
    types = built.tensors["mm_token_type_ids"][0]
    img = ids == inputs.image_token_id
    assert set(types[img].tolist()) == {1, 2}
    assert int((types == 1).sum()) == int(built.tensors["image_grid_thw"][0].prod()) // 4
    assert int((types == 2).sum()) == int(built.tensors["video_grid_thw"][0].prod()) // 4
    assert torch.all(types[~img] == 0)


def test_describe_and_extract(tiny_glm) -> None:
    (view,) = _views(1, seed=8, prefix="ext")
    d = tiny_glm.describe(view)
    assert isinstance(d, Description) and d.tags == []
    r = tiny_glm.extract(view, "table")
    assert r["kind"] == "tables" and r["view_id"] == "ext0"
    assert isinstance(r["ok"], bool) and isinstance(r["raw"], str)
    if not r["ok"]:  # a random model rarely writes JSON: it must say so
        assert r["data"] is None and r["error"]
    with pytest.raises(InvalidRequest):
        tiny_glm.extract(view, "poetry")


def test_factory_builds_both_backends_lazily(tiny_glm_dir) -> None:
    from indexer.models.factory import build_model
    from indexer.models.glm import GlmModel
    from indexer.models.openai_backend import OpenAIModel
    from indexer.settings import Settings

    glm = build_model(Settings(model=ModelSettings(backend="glm", path=str(tiny_glm_dir))))
    assert isinstance(glm, GlmModel) and glm._model is None  # not loaded yet
    served = build_model(
        Settings(model=ModelSettings(backend="openai", base_url="http://127.0.0.1:9/v1"))
    )
    # generation from the server, vectors from a local embedder (cpu by default)
    from indexer.models.composite import CompositeModel

    assert isinstance(served, CompositeModel)
    assert isinstance(served.generator, OpenAIModel)
    assert served.model_id == served.embedder.model_id and "semantic" in served.spaces


def test_glm_end_to_end_through_the_service(tiny_glm, tmp_path: Path) -> None:
    """ingest → search → follow-up answer → metrics with the glm backend on its real path."""
    import io
    import time

    from fastapi.testclient import TestClient

    from indexer.context import Glimpse
    from indexer.settings import Settings
    from service.app import create_app

    settings = Settings(data_dir=tmp_path / "d", environment="test",
                        model=ModelSettings(backend="glm", path="unused-model-is-injected"))
    files = []
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(buf, format="PNG")
        files.append(("files", (f"{i}.png", buf.getvalue())))
    with TestClient(create_app(core=Glimpse(settings, model=tiny_glm))) as c:
        items = c.post("/v1/media", files=files).json()["items"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [c.get(f"/v1/jobs/{i['job_id']}").json()["status"] for i in items]
            if all(s in ("done", "failed") for s in states):
                break
            time.sleep(0.1)
        assert states == ["done", "done"]
        body = c.post("/v1/search", json={"text": "a red square", "k": 2, "rerank_n": 2}).json()
        assert len(body["results"]) == 2 and body["stages"] == ["retrieve", "rerank"]
        assert all(0.0 <= r["relevance"] <= 1.0 for r in body["results"])
        a = c.post(f"/v1/sessions/{body['session_id']}/messages",
                   json={"question": "what is in the first one?"})
        assert a.status_code == 200 and isinstance(a.json()["answer"], str)
        assert "routing" in a.json()["debug"]
        m = c.get("/metrics").text
        assert 'glimpse_jobs{status="done"} 2' in m
        assert "glimpse_glm_vision_cache_hits_total" in m
