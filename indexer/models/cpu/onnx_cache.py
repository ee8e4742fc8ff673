"""Run the cpu backend's torch models through onnxruntime: export once, cache on disk, reuse.

On one CPU core onnxruntime runs EfficientNet-Lite0 ~4x faster than eager torch (see
classifier.py); MiniLM ~2.5x faster on single short texts and ~1.3x on short prompts, about
the same on batches of long captions (matmul-bound there, see text.py). The exported graph lives in
`<cache_dir>/onnx/<name>-<key>.onnx`, where `key` hashes everything the graph depends on
(the weight files' size and mtime, torch and model-package versions, the export parameters
and FORMAT_VERSION), so a changed model or toolchain never picks up a stale graph.

Several processes (Celery workers) may start at once: each exports to its own temp file in
the same directory and publishes it with os.replace, so readers only ever see a complete file.
A graph is checked against the torch module on the example inputs every time it is opened
(one small forward); a missing `onnx` package, a failed export, an unreadable or mismatching
file all log one warning and return None, and the caller keeps using torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# bump when the export recipe changes in a way the other key parts do not capture
FORMAT_VERSION = "glimpse-onnx-1"
OPSET = 17

_warned: set[str] = set()
_warn_lock = threading.Lock()


def _warn_once(tag: str, msg: str, *args: Any) -> None:
    with _warn_lock:
        if tag in _warned:
            return
        _warned.add(tag)
    log.warning(msg, *args)


def default_cache_dir() -> Path:
    """GLIMPSE_MODEL__CACHE_DIR, else $XDG_CACHE_HOME/glimpse, else ~/.cache/glimpse."""
    env = os.environ.get("GLIMPSE_MODEL__CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "glimpse"


def file_fingerprint(*paths: str | os.PathLike[str]) -> list[list[Any]]:
    """Name, size and mtime of each weight/config file: cheap, and changes on reinstall."""
    out: list[list[Any]] = []
    for p in paths:
        st = os.stat(p)
        out.append([Path(p).name, st.st_size, st.st_mtime_ns])
    return out


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def cache_key(parts: Mapping[str, Any]) -> str:
    import torch

    blob = json.dumps({"format": FORMAT_VERSION, "torch": torch.__version__, **parts},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_key(name: str, parts: Mapping[str, Any], opset: int = OPSET) -> str:
    """The key of a graph's stored reference outputs: what the weights and code are, computed
    without importing torch (its version comes from the package metadata)."""
    blob = json.dumps({"format": FORMAT_VERSION, "torch": package_version("torch"),
                       "name": name, "opset": opset, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _reference_path(folder: Path, name: str, key: str) -> Path:
    return folder / f"{name}-ref-{key}.npz"


def _write_reference(folder: Path, name: str, key: str, graph: Path, session: Any,
                     checks: Sequence[tuple[Any, ...]], input_names: Sequence[str]) -> None:
    """Store the check inputs and this (torch-verified) session's outputs beside the graph,
    so a later process can verify the graph without building the torch model."""
    fed = [i.name for i in session.get_inputs()]
    arrays: dict[str, Any] = {"graph": np.array(graph.name), "inputs": np.array(fed),
                              "n": np.array(len(checks))}
    for i, args in enumerate(checks):
        feed = {n: a.numpy() for n, a in zip(input_names, args, strict=True) if n in fed}
        for n, a in feed.items():
            arrays[f"in{i}_{n}"] = a
        for j, out in enumerate(session.run(None, feed)):
            arrays[f"out{i}_{j}"] = out
    target = _reference_path(folder, name, key)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}-ref-", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    finally:
        _unlink(Path(tmp_name))


def verified_session(name: str, reference_parts: Mapping[str, Any], *,
                     cache_dir: Path | None = None, threads: int = 1, atol: float = 1e-4,
                     rtol: float = 1e-3, opset: int = OPSET) -> Any | None:
    """The cached graph for these weights, checked against the reference outputs stored
    when it was last verified against torch — without importing torch or building the torch
    model (what a warm start of the cpu backend costs in memory). None when there is no
    such reference or the graph no longer reproduces it: then build it the usual way."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    folder = (cache_dir or default_cache_dir()) / "onnx"
    ref = _reference_path(folder, name, reference_key(name, reference_parts, opset))
    if not ref.exists():
        return None
    try:
        with np.load(ref, allow_pickle=False) as z:
            graph = folder / str(z["graph"])
            fed = [str(x) for x in z["inputs"]]
            sess = _open(str(graph), threads)
            for i in range(int(z["n"])):
                got = sess.run(None, {n: z[f"in{i}_{n}"] for n in fed})
                for j, g in enumerate(got):
                    want = z[f"out{i}_{j}"]
                    if g.shape != want.shape or not np.allclose(g, want, atol=atol, rtol=rtol):
                        raise ValueError(f"output {j} of check {i} differs")
    except Exception as e:  # noqa: BLE001 - any doubt: the torch-checked path decides
        _warn_once(f"ref:{ref}", "onnx graph for %s failed its stored check (%s): "
                   "re-verifying against torch", name, e)
        _unlink(ref)
        return None
    log.info("%s: onnxruntime graph %s (checked against %s, no torch)", name, graph, ref.name)
    return sess


def session_options(threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting pool threads: the classifier overlaps OCR/detector threads on 2 cores
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def _open(model: str | bytes, threads: int) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(model, sess_options=session_options(threads),
                                providers=["CPUExecutionProvider"])


def _export(module: Any, example: tuple[Any, ...], f: Any, input_names: Sequence[str],
            output_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]],
            opset: int) -> None:
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, f, input_names=list(input_names),
                          output_names=list(output_names),
                          dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                          opset_version=opset, do_constant_folding=True, dynamo=False)


def _mismatch(session: Any, module: Any, checks: Sequence[tuple[Any, ...]],
              input_names: Sequence[str], atol: float, rtol: float) -> str | None:
    """None when the session reproduces the torch module on every check input, else why."""
    import torch

    fed = {i.name for i in session.get_inputs()}
    for args in checks:
        with torch.inference_mode():
            ref = module(*args)
        refs = ref if isinstance(ref, tuple | list) else (ref,)
        feed = {n: a.numpy() for n, a in zip(input_names, args, strict=True) if n in fed}
        got = session.run(None, feed)
        if len(got) != len(refs):
            return f"{len(got)} outputs, torch has {len(refs)}"
        for g, r in zip(got, refs, strict=True):
            r = r.numpy()
            if g.shape != r.shape:
                return f"shape {g.shape} != torch {r.shape}"
            if not np.allclose(g, r, atol=atol, rtol=rtol):
                return f"max abs diff {float(np.abs(g - r).max()):.3g}"
    return None


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def onnx_session(
    module: Any,
    example_inputs: tuple[Any, ...],
    *,
    name: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
    key_parts: Mapping[str, Any],
    cache_dir: Path | None = None,
    threads: int = 1,
    check_inputs: Sequence[tuple[Any, ...]] = (),
    atol: float = 1e-4,
    rtol: float = 1e-3,
    opset: int = OPSET,
    reference_parts: Mapping[str, Any] | None = None,
) -> Any | None:
    """An onnxruntime.InferenceSession equivalent to `module` (an eval-mode torch module
    taking the tensors `example_inputs`), or None (with one warning) when that cannot be had.

    key_parts: what the weights and model code are (file_fingerprint, package versions);
    the export parameters and torch version are added here. check_inputs: further inputs the
    session must reproduce besides example_inputs (e.g. another batch/sequence length, so a
    shape baked in by tracing is caught). reference_parts: given, the verified session's
    outputs on the check inputs are stored under `reference_key(name, reference_parts)` so
    `verified_session` can reopen the graph later without torch."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        _warn_once(f"ort:{name}", "onnxruntime unavailable (%s): %s runs on torch", e, name)
        return None
    try:
        key = cache_key({
            **key_parts, "name": name, "opset": opset, "inputs": list(input_names),
            "outputs": list(output_names), "dynamic_axes": dynamic_axes,
            "example_shapes": [list(getattr(a, "shape", ())) for a in example_inputs],
            "example_dtypes": [str(getattr(a, "dtype", "")) for a in example_inputs],
        })
        folder = (cache_dir or default_cache_dir()) / "onnx"
        path = folder / f"{name}-{key}.onnx"
    except Exception as e:  # any failure here means: stay on torch
        _warn_once(f"key:{name}", "onnx cache key for %s failed (%s): running on torch", name, e)
        return None
    checks = [example_inputs, *check_inputs]

    # 1) a graph another process (or an earlier run) already exported
    if path.exists():
        try:
            sess = _open(str(path), threads)
            why = _mismatch(sess, module, checks, input_names, atol, rtol)
            if why is None:
                log.info("%s: onnxruntime graph from %s", name, path)
                _reference(folder, name, reference_parts, opset, path, sess, checks,
                           input_names)
                return sess
            _warn_once(f"stale:{path}", "cached onnx graph %s disagrees with torch (%s): "
                       "rebuilding it", path, why)
        except Exception as e:
            _warn_once(f"bad:{path}", "cached onnx graph %s is unreadable (%s): rebuilding it",
                       path, e)
        _unlink(path)

    # 2) export, check, then publish atomically
    try:
        import onnx  # noqa: F401  # torch.onnx.export needs it
    except ImportError:
        _warn_once("onnx-missing", "the `onnx` package is not installed: %s runs on torch "
                   "(pip install onnx for the onnxruntime speed-up)", name)
        return None
    t0 = time.perf_counter()
    tmp: Path | None = None
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}-", suffix=".onnx.tmp")
            os.close(fd)
            tmp = Path(tmp_name)
        except OSError as e:
            _warn_once(f"dir:{folder}", "onnx cache dir %s is not writable (%s): exporting "
                       "%s in memory, every start", folder, e, name)
        if tmp is not None:
            _export(module, example_inputs, str(tmp), input_names, output_names,
                    dynamic_axes, opset)
            sess = _open(str(tmp), threads)
        else:
            buf = io.BytesIO()
            _export(module, example_inputs, buf, input_names, output_names, dynamic_axes,
                    opset)
            sess = _open(buf.getvalue(), threads)
        why = _mismatch(sess, module, checks, input_names, atol, rtol)
        if why is not None:
            _warn_once(f"mismatch:{path}", "onnx export of %s disagrees with torch (%s): "
                       "running on torch", name, why)
            return None
        if tmp is not None:
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; other workers may read it
            os.replace(tmp, path)
            tmp = None
            log.info("%s: exported to %s in %.1fs", name, path, time.perf_counter() - t0)
            _reference(folder, name, reference_parts, opset, path, sess, checks, input_names)
        return sess
    except Exception as e:
        _warn_once(f"export:{path}", "onnx export of %s failed (%s: %s): running on torch",
                   name, type(e).__name__, e)
        return None
    finally:
        if tmp is not None:
            _unlink(tmp)


def _reference(folder: Path, name: str, parts: Mapping[str, Any] | None, opset: int,
               graph: Path, sess: Any, checks: Sequence[tuple[Any, ...]],
               input_names: Sequence[str]) -> None:
    if parts is None:
        return
    try:
        _write_reference(folder, name, reference_key(name, parts, opset), graph, sess, checks,
                         input_names)
    except Exception as e:  # noqa: BLE001 - only a faster next start is lost
        _warn_once(f"refw:{graph}", "could not store the reference outputs of %s (%s)",
                   graph, e)


__all__ = ["default_cache_dir", "file_fingerprint", "onnx_session", "package_version",
           "reference_key", "verified_session"]
