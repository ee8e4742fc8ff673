"""CenterNet object detector: the ONNX conversion against the original TF.js graph's own
outputs (recorded once in Node with @tensorflow/tfjs, see the fixture's "about"), and the
input geometry (aspect kept, padded after resizing)."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.models.cpu.objects import ObjectDetector, ObjectsUnavailable, prepare

FIXTURE = Path(__file__).parent / "fixtures" / "centernet_tfjs_astronaut.json"


def _astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return np.asarray(skdata.astronaut(), np.uint8)


@pytest.fixture(scope="module")
def session():
    ort = pytest.importorskip("onnxruntime")
    try:
        path = prepare(fetch=False)
    except ObjectsUnavailable as e:
        pytest.skip(f"object detector not prepared ({e}): python -m indexer.models.cpu.objects")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _graph_rows(peaks: np.ndarray, wh: np.ndarray, k: int) -> np.ndarray:
    """The TF graph's own tail on our outputs: TopKV2 over the NHWC-flattened peaks, then
    x1 = 4 gx - wh0, y1 = 4 gy - wh1, x2 = 4 gx + wh2, y2 = 4 gy + wh3."""
    p = peaks[0].transpose(1, 2, 0)  # gh x gw x 80
    gw = p.shape[1]
    flat = p.reshape(-1)
    rows = []
    for i in np.argsort(-flat, kind="stable")[:k]:
        cls, pos = int(i) % 80, int(i) // 80
        gy, gx = divmod(pos, gw)
        d = wh[0, :, gy, gx]
        rows.append([4 * gx - d[0], 4 * gy - d[1], 4 * gx + d[2], 4 * gy + d[3], flat[i], cls])
    return np.array(rows, np.float64)


@pytest.mark.parametrize("case", [0, 1], ids=["512-graph-detections", "416-patched-graph"])
def test_onnx_matches_the_tfjs_graph(session, case):
    fix = json.loads(FIXTURE.read_text())["cases"][case]
    h, w = fix["crop"]
    x = _astronaut()[:h, :w].astype(np.float32)[None]
    peaks, wh = session.run(None, {"images": x})
    want = np.array(fix["rows"], np.float64)
    got = _graph_rows(peaks, wh, len(want))
    assert got[:, 5].tolist() == want[:, 5].tolist()  # classes in the graph's order
    np.testing.assert_allclose(got[:, 4], want[:, 4], atol=2e-4)  # scores (fixture: 4 dp)
    np.testing.assert_allclose(got[:, :4], want[:, :4], atol=0.02)  # boxes, input pixels
    if "wh_abs_sum" in fix:  # the whole box-offset map, not only the top cells
        np.testing.assert_allclose(float(np.abs(wh).astype(np.float64).sum()),
                                   fix["wh_abs_sum"], rtol=1e-5)


def test_detect_end_to_end_matches_the_graph(session):
    """A 512x512 image at side 512 is fed unchanged, so detect()'s first box is the graph's
    first detection row (clipped to the image)."""
    row = json.loads(FIXTURE.read_text())["cases"][0]["rows"][0]
    det = ObjectDetector(side=512, min_score=0.3)
    objs = det.detect(Image.fromarray(_astronaut()))
    assert objs and objs[0].label == "person"
    assert objs[0].score == pytest.approx(row[4], abs=1e-3)
    b = objs[0].box
    np.testing.assert_allclose([b.x0, b.y0, b.x1, b.y1],
                               [max(0, row[0]), max(0, row[1]), min(512, row[2]),
                                min(512, row[3])], atol=0.05)


def test_input_keeps_aspect_and_pads_after_resizing():
    det = ObjectDetector(side=416)
    im = Image.new("RGB", (640, 480), (200, 10, 30))
    x, sx, sy = det._input(im)
    assert x.dtype == np.float32 and x.shape[0] == 1 and x.shape[3] == 3
    assert x.shape[1:3] == (416, 416)
    assert (x[0, :312, :416] == np.array([200, 10, 30], np.float32)).all()  # 640x480 -> 416x312
    assert (x[0, 312:] == 0).all()  # padding below, none stretched
    assert sx == pytest.approx(640 / 416) and sy == pytest.approx(480 / 312)


def test_wide_strip_is_resized_before_padding():
    """20000x20 used to be padded to a 20000x20000 canvas first (3.2 s, +1.5 GB peak)."""
    det = ObjectDetector(side=416)
    im = Image.new("RGB", (20000, 20), (255, 255, 255))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    t0 = time.perf_counter()
    x, sx, sy = det._input(im)
    dt = time.perf_counter() - t0
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert x.shape[1:3] == (416, 416)
    assert (x[0, 0, :416] == 255).all() and (x[0, 1:] == 0).all()  # one row of content
    assert sx == pytest.approx(20000 / 416) and sy == pytest.approx(20.0)
    assert grew_mb < 200, f"peak RSS grew {grew_mb:.0f} MB"
    assert dt < 1.0, f"{dt:.2f}s"
