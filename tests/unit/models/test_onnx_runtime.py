"""The cpu backend's models through onnxruntime: the exported graphs reproduce torch, the
on-disk cache is reused, and broken caches, stale caches and failed exports fall back or
rebuild instead of crashing. Real exports and real models, no mocks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch  # noqa: E402

from indexer.models.cpu import onnx_cache  # noqa: E402

# -- the cache helper, on a tiny module (fast) ----------------------------------------------


def _tiny(seed: int = 0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                               torch.nn.Linear(16, 4)).eval()


def _session(module, cache_dir, **kw):
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
    return onnx_cache.onnx_session(
        module, (x,), name="tiny", input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        key_parts={"weights": "tiny-v1"}, cache_dir=cache_dir, **kw)


def _onnx_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "onnx").iterdir())


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GLIMPSE_MODEL__CACHE_DIR", str(tmp_path / "m"))
    assert onnx_cache.default_cache_dir() == tmp_path / "m"
    monkeypatch.delenv("GLIMPSE_MODEL__CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert onnx_cache.default_cache_dir() == tmp_path / "xdg" / "glimpse"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert onnx_cache.default_cache_dir() == Path.home() / ".cache" / "glimpse"


def test_export_matches_torch_with_dynamic_batch_and_is_reused(tmp_path):
    net = _tiny()
    sess = _session(net, tmp_path)
    assert sess is not None
    (path,) = _onnx_files(tmp_path)  # no temp files left behind
    assert path.name.startswith("tiny-") and path.suffix == ".onnx"
    x = np.random.default_rng(0).standard_normal((7, 8)).astype(np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], ref, atol=1e-5)

    mtime = path.stat().st_mtime_ns
    again = _session(net, tmp_path)
    assert again is not None
    assert _onnx_files(tmp_path) == [path] and path.stat().st_mtime_ns == mtime


def test_key_changes_with_export_parameters(tmp_path):
    net = _tiny()
    assert _session(net, tmp_path) is not None
    assert _session(net, tmp_path, opset=18) is not None
    assert len(_onnx_files(tmp_path)) == 2


def test_corrupt_cache_file_is_rebuilt(tmp_path, caplog):
    net = _tiny()
    assert _session(net, tmp_path) is not None
    (path,) = _onnx_files(tmp_path)
    path.write_bytes(b"not an onnx graph" * 100)
    with caplog.at_level(logging.WARNING, logger=onnx_cache.__name__):
        sess = _session(net, tmp_path)
    assert sess is not None
    assert "unreadable" in caplog.text
    assert _onnx_files(tmp_path) == [path] and not path.read_bytes().startswith(b"not an")


def test_stale_cache_file_that_disagrees_with_torch_is_rebuilt(tmp_path, caplog):
    assert _session(_tiny(seed=0), tmp_path) is not None
    (path,) = _onnx_files(tmp_path)
    before = path.read_bytes()
    other = _tiny(seed=5)  # same key, different weights: the cached graph is wrong for it
    with caplog.at_level(logging.WARNING, logger=onnx_cache.__name__):
        sess = _session(other, tmp_path)
    assert sess is not None and "disagrees" in caplog.text
    assert path.read_bytes() != before
    x = np.ones((2, 8), np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(sess.run(None, {"x": x})[0],
                                   other(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_failed_export_returns_none(tmp_path, caplog):
    class NotTraceable(torch.nn.Module):
        def forward(self, x):
            if torch.jit.is_tracing():
                raise RuntimeError("this module cannot be traced")
            return x * 2

    with caplog.at_level(logging.WARNING, logger=onnx_cache.__name__):
        assert _session(NotTraceable().eval(), tmp_path) is None
    assert "cannot be traced" in caplog.text and "running on torch" in caplog.text
    assert not list((tmp_path / "onnx").iterdir())  # the temp file was removed


def test_graph_that_baked_in_the_example_is_rejected(tmp_path, caplog):
    class LeavesTheGraph(torch.nn.Module):
        def forward(self, x):  # numpy round trip: tracing records a constant
            return torch.from_numpy(np.asarray(x.numpy()) * 2)

    other = torch.ones(2, 8)
    with caplog.at_level(logging.WARNING, logger=onnx_cache.__name__):
        assert _session(LeavesTheGraph().eval(), tmp_path, check_inputs=[(other,)]) is None
    assert "disagrees" in caplog.text
    assert not list((tmp_path / "onnx").iterdir())  # nothing published


def test_unwritable_cache_dir_exports_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache dir should be")
    sess = _session(_tiny(), blocker)
    assert sess is not None
    assert sess.run(None, {"x": np.zeros((1, 8), np.float32)})[0].shape == (1, 4)


def test_missing_onnx_package_falls_back_but_cached_graph_still_loads(tmp_path, monkeypatch):
    net = _tiny()
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` sees when absent
    assert _session(net, tmp_path) is None  # nothing cached: would need to export
    monkeypatch.undo()
    assert _session(net, tmp_path) is not None
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert _session(net, tmp_path) is not None  # loading a cached graph needs only ORT


def test_concurrent_processes_share_one_cache_file(tmp_path):
    code = textwrap.dedent(f"""
        import torch
        from pathlib import Path
        from indexer.models.cpu import onnx_cache
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(),
                                  torch.nn.Linear(16, 4)).eval()
        x = torch.randn(3, 8, generator=torch.Generator().manual_seed(1))
        s = onnx_cache.onnx_session(
            net, (x,), name="tiny", input_names=["x"], output_names=["y"],
            dynamic_axes={{"x": {{0: "batch"}}, "y": {{0: "batch"}}}},
            key_parts={{"weights": "tiny-v1"}}, cache_dir=Path({str(tmp_path)!r}))
        print("ok" if s is not None else "none")
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=os.getcwd())
             for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert out.strip() == "ok", err
    (path,) = _onnx_files(tmp_path)
    assert _session(_tiny(), tmp_path) is not None


# -- the real models ------------------------------------------------------------------------

IMAGES = ("chelsea", "coffee", "astronaut")
TEXTS = [
    "a cat", "", "text: OPEN", "a photo of a tabby cat sitting on a wooden table",
    "a red double-decker bus on a rainy street in london with people waiting under "
    "umbrellas at the stop while a cyclist passes by in the evening light",
    " ".join(["a very long ocr text that is truncated at one hundred twenty eight tokens"] * 20),
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("glimpse-cache")


@pytest.fixture(scope="module")
def images():
    pytest.importorskip("skimage")
    from PIL import Image
    from skimage import data

    return [Image.fromarray(getattr(data, n)()).convert("RGB") for n in IMAGES]


@pytest.fixture(scope="module")
def classifiers(cache_dir):
    from indexer.models.cpu.classifier import Classifier

    ort_c, torch_c = Classifier(threads=1, cache_dir=cache_dir), Classifier(use_onnx=False)
    ort_c.load()
    torch_c.load()
    return ort_c, torch_c


@pytest.fixture(scope="module")
def encoders(cache_dir):
    from indexer.models.cpu.text import TextEncoder

    ort_e = TextEncoder(threads=1, cache_dir=cache_dir, batch_size=4)
    torch_e = TextEncoder(use_onnx=False, batch_size=4)
    ort_e.load()
    torch_e.load()
    return ort_e, torch_e


def _model_file(cache_dir: Path, prefix: str) -> Path:
    (path,) = [p for p in _onnx_files(cache_dir)
               if p.name.startswith(prefix) and p.suffix == ".onnx"]
    return path


@pytest.mark.slow
def test_classifier_onnxruntime_matches_torch(classifiers, images):
    ort_c, torch_c = classifiers
    assert ort_c.backend == "onnxruntime" and torch_c.backend == "torch"
    for crops in (("full",), ("full", "center")):
        p1, f1 = ort_c.run(images, crops)
        p2, f2 = torch_c.run(images, crops)
        assert p1.shape == (3, 1000) and f1.shape == (3, 1280)
        assert p1.dtype == f1.dtype == np.float32
        np.testing.assert_allclose(p1.sum(1), 1.0, atol=1e-4)
        np.testing.assert_allclose(p1, p2, atol=1e-4)
        np.testing.assert_allclose(f1, f2, atol=1e-3, rtol=1e-3)
        assert (p1.argmax(1) == p2.argmax(1)).all()
    assert 281 <= int(p1[0].argmax()) <= 285  # chelsea: an ImageNet domestic-cat class
    p, f = ort_c.run([], ("full",))
    assert p.shape == (0, 1000) and f.shape == (0, 1280)


@pytest.mark.slow
def test_classifier_runs_from_several_threads(classifiers, images):
    from concurrent.futures import ThreadPoolExecutor

    ort_c, _ = classifiers
    ref = ort_c.run(images)[1]
    with ThreadPoolExecutor(3) as ex:
        outs = list(ex.map(lambda _: ort_c.run(images)[1], range(6)))
    for f in outs:
        np.testing.assert_allclose(f, ref, atol=1e-6)


@pytest.mark.slow
def test_text_encoder_onnxruntime_matches_torch(encoders):
    ort_e, torch_e = encoders
    assert ort_e.backend == "onnxruntime" and torch_e.backend == "torch"
    a = ort_e.embed(TEXTS, cache=False)
    b = torch_e.embed(TEXTS, cache=False)
    assert a.shape == (len(TEXTS), 384) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(1).min()) > 0.9999
    # one text alone (no padding) equals the same text inside a padded batch
    np.testing.assert_allclose(ort_e.embed([TEXTS[3]], cache=False)[0], a[3], atol=1e-5)


@pytest.mark.slow
def test_model_cache_files_are_reused(classifiers, encoders, cache_dir, images):
    from indexer.models.cpu.classifier import Classifier
    from indexer.models.cpu.text import TextEncoder

    cls_file, txt_file = (_model_file(cache_dir, "efficientnet-lite0-"),
                          _model_file(cache_dir, "all-minilm-l6-v2-"))
    assert cls_file.exists() and txt_file.exists()
    before = {p: p.stat().st_mtime_ns for p in _onnx_files(cache_dir)}  # graphs + references
    c = Classifier(threads=1, cache_dir=cache_dir)
    e = TextEncoder(threads=1, cache_dir=cache_dir)
    c.load()
    e.load()
    assert c.backend == e.backend == "onnxruntime"
    assert {p: p.stat().st_mtime_ns for p in _onnx_files(cache_dir)} == before
    np.testing.assert_allclose(c.run(images)[0], classifiers[0].run(images)[0], atol=1e-6)


@pytest.mark.slow
def test_corrupt_model_cache_is_rebuilt(classifiers, encoders, cache_dir, images):
    from indexer.models.cpu.classifier import Classifier
    from indexer.models.cpu.text import TextEncoder

    for prefix in ("efficientnet-lite0-", "all-minilm-l6-v2-"):
        path = _model_file(cache_dir, prefix)
        path.write_bytes(os.urandom(4096))
    c = Classifier(threads=1, cache_dir=cache_dir)
    e = TextEncoder(threads=1, cache_dir=cache_dir)
    c.load()
    e.load()
    assert c.backend == e.backend == "onnxruntime"
    for prefix in ("efficientnet-lite0-", "all-minilm-l6-v2-"):
        assert _model_file(cache_dir, prefix).stat().st_size > 1_000_000
    torch_c = classifiers[1]
    np.testing.assert_allclose(c.run(images)[0], torch_c.run(images)[0], atol=1e-4)
    a, b = e.embed(TEXTS[:4], cache=False), encoders[1].embed(TEXTS[:4], cache=False)
    assert float((a * b).sum(1).min()) > 0.9999


@pytest.mark.slow
def test_use_onnx_false_writes_nothing(tmp_path, images):
    from indexer.models.cpu.classifier import Classifier

    c = Classifier(use_onnx=False, cache_dir=tmp_path)
    p, f = c.run(images[:1], ("full", "center"))
    assert c.backend == "torch" and p.shape == (1, 1000) and f.shape == (1, 1280)
    assert not (tmp_path / "onnx").exists()


@pytest.mark.slow
def test_warm_start_checks_the_graph_without_torch(classifiers, encoders, cache_dir, images,
                                                   monkeypatch):
    """A warm start reopens the cached graphs against their stored reference outputs, never
    building the torch models; a reference that no longer fits sends it back to torch."""
    from indexer.models.cpu.classifier import Classifier
    from indexer.models.cpu.text import TextEncoder

    refs = sorted((cache_dir / "onnx").glob("*-ref-*.npz"))
    assert len(refs) == 2
    real = onnx_cache.onnx_session

    def no_torch_path(*a, **k):  # the torch-checked path must not be taken
        raise AssertionError("built the torch model on a warm start")

    monkeypatch.setattr(onnx_cache, "onnx_session", no_torch_path)
    c, e = Classifier(threads=1, cache_dir=cache_dir), TextEncoder(threads=1, cache_dir=cache_dir)
    c.load()
    e.load()
    assert c.backend == e.backend == "onnxruntime"
    np.testing.assert_allclose(c.run(images)[0], classifiers[0].run(images)[0], atol=1e-6)
    np.testing.assert_allclose(e.embed(["a cat"]), encoders[0].embed(["a cat"]), atol=1e-6)

    # a reference that disagrees with the graph: not trusted, rebuilt through torch
    ref = next(r for r in refs if r.name.startswith("efficientnet"))
    with np.load(ref) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["out0_0"] = arrays["out0_0"] + 1.0
    np.savez(ref, **arrays)
    calls = []

    def counted(*a, **k):
        calls.append(k.get("name"))
        return real(*a, **k)

    monkeypatch.setattr(onnx_cache, "onnx_session", counted)
    c2 = Classifier(threads=1, cache_dir=cache_dir)
    c2.load()
    assert calls == ["efficientnet-lite0"] and c2.backend == "onnxruntime"
    assert ref.exists()  # written again from the torch-verified graph
