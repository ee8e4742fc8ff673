"""The clip embed backend through the real app: ingest (photos, a video), search by image, by
text, with explanations, and the switch from the cpu embedder through `reindex` (spaces never
mixed). A tiny random CLIP checkpoint (tests/unit/models/clip_fixture.py) stands in for real
weights: an image is its own nearest neighbour whatever the weights, and the describer's
evidence (OCR) is real, so those are what the assertions rest on."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.conftest import SAMPLES, upload, wait_jobs

_MODELS = str(Path(__file__).resolve().parents[1] / "models")
if _MODELS not in sys.path:
    sys.path.insert(0, _MODELS)
import clip_fixture  # noqa: E402

tiny_clip_dir = clip_fixture.tiny_clip_dir


@pytest.fixture(scope="module")
def clip_model(tiny_clip_dir: Path, cpu_model: Any, tmp_path_factory: Any) -> Any:
    from indexer.models.clip import ClipModel

    return ClipModel(clip_fixture.load_clip(tiny_clip_dir), cpu_model,
                     tmp_path_factory.mktemp("clip-cache"))


def _clip_settings(settings: Any, ckpt: Path) -> Any:
    model = settings.model.model_copy(update={"embed_backend": "clip", "clip_model": str(ckpt)})
    return settings.model_copy(update={"model": model})


@pytest.fixture()
def clip_client(settings: Any, tiny_clip_dir: Path, clip_model: Any) -> Iterator[TestClient]:
    from indexer.context import Glimpse
    from service.app import create_app

    app = create_app(core=Glimpse(_clip_settings(settings, tiny_clip_dir), model=clip_model))
    with TestClient(app) as c:
        yield c


def _ingest(client: TestClient, files: list[tuple[str, bytes]]) -> dict[str, str]:
    r = upload(client, files)
    assert r.status_code == 202, r.text
    items = r.json()["items"]
    done = wait_jobs(client, [i["job_id"] for i in items])
    assert all(d["status"] == "done" for d in done.values()), done
    return {i["filename"]: i["media_id"] for i in items}


def _samples() -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in sorted(SAMPLES.glob("*.jpg"))]


def _video(paths: list[Path], out: Path, seconds_each: float = 2.0, fps: int = 10) -> bytes:
    with av.open(str(out), "w") as c:
        s = c.add_stream("h264", rate=fps)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for p in paths:
            img = Image.open(p).convert("RGB").resize((320, 240))
            for _ in range(int(seconds_each * fps)):
                for pkt in s.encode(av.VideoFrame.from_image(img)):
                    c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return out.read_bytes()


def _image_search(client: TestClient, data: bytes, **form: str) -> Any:
    """Multipart image search: `/v1/search/image` where the app has it, else `/v1/search`."""
    path = ("/v1/search/image" if "/v1/search/image" in client.get("/openapi.json").json()
            ["paths"] else "/v1/search")
    return client.post(path, files={"image": ("q.jpg", data)}, data=form)


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_ingest_and_search_by_image_text_and_video_moment(clip_client: TestClient,
                                                          clip_model: Any,
                                                          tmp_path: Path) -> None:
    vid = _video([SAMPLES / "coffee.jpg", SAMPLES / "rocket.jpg", SAMPLES / "chelsea.jpg"],
                 tmp_path / "v.mp4")
    ids = _ingest(clip_client, [*_samples(), ("v.mp4", vid)])

    # descriptions: the describer's OCR and the clip tagger, stored with the view
    page = clip_client.get(f"/v1/media/{ids['page.jpg']}").json()
    view = page["views"][0]
    labels = set(clip_model.tagger.labels)
    assert all(t["label"] in labels for t in view["tags"] if t["source"] == "classifier")
    stored = clip_client.app.state.core.catalog.views_of(ids["page.jpg"])[0].description
    assert stored.extra["tagger"] == clip_model.model_id
    ocr_words = sorted({w.strip(".,;:'\"()").lower() for line in view["ocr"]
                        for w in line["text"].split()}, key=len)
    assert ocr_words and len(ocr_words[-1]) >= 5, view["ocr"]

    # image -> image: the same photo is its own nearest neighbour, with a calibrated relevance
    r = _image_search(clip_client, (SAMPLES / "rocket.jpg").read_bytes(), k="3")
    assert r.status_code == 200, r.text
    top = r.json()["results"][0]
    assert top["media_id"] == ids["rocket.jpg"] or top["media_id"] == ids["v.mp4"]
    assert any(h["list"] == "image_semantic" and h["score"] > 0.999 for h in top["matched"])
    assert top["relevance"] > 0.9 and r.json()["no_good_match"] is False

    # a video moment: a frame of the second shot finds that shot's time range
    frame = Image.open(SAMPLES / "rocket.jpg").convert("RGB").resize((320, 240))
    r = _image_search(clip_client, _jpeg(frame), k="5", filters='{"kind": ["video"]}')
    assert r.status_code == 200, r.text
    res = [x for x in r.json()["results"] if x["media_id"] == ids["v.mp4"]]
    assert res and res[0]["moments"], r.json()
    assert 1.5 <= res[0]["t_start"] <= 2.5, res[0]["moments"]

    # text: a word the describer read on the page, through the CLIP text tower + lexical list
    word = ocr_words[-1]
    r = clip_client.post("/v1/search", json={"text": word, "k": 3, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["results"][0]["media_id"] == ids["page.jpg"], body["results"]
    assert body["results"][0]["relevance"] >= 0.9
    assert {"semantic", "caption", "lexical"} <= set(body["lists"])
    steps = body["results"][0]["explanation"]
    assert steps and any("relevance" in s["text"].lower() for s in steps)
    rels = [x["relevance"] for x in body["results"]]
    assert rels == sorted(rels, reverse=True)
    assert body["no_good_match"] is (rels[0] < 0.2)


@pytest.mark.parametrize("vectors", ["faiss", "qdrant"])
def test_switch_from_cpu_to_clip_through_reindex(settings: Any, cpu_model: Any,
                                                 clip_model: Any, tiny_clip_dir: Path,
                                                 vectors: str) -> None:
    from indexer.context import Glimpse
    from indexer.reindex import reindex
    from indexer.search import SearchQuery
    from service.app import create_app

    settings = settings.model_copy(update={"vectors": settings.vectors.model_copy(
        update={"backend": vectors})})

    with TestClient(create_app(core=Glimpse(settings, model=cpu_model))) as c:
        ids = _ingest(c, _samples())
    cpu_core = Glimpse(settings, model=cpu_model)
    cpu_name = cpu_core.vectors.name  # type: ignore[attr-defined]
    cpu_points = cpu_core.vectors.count()
    cpu_core.close()

    core = Glimpse(_clip_settings(settings, tiny_clip_dir), model=clip_model)
    assert core.vectors.name != cpu_name  # type: ignore[attr-defined]
    assert "clip" in core.vectors.name and "semantic16" in core.vectors.name  # type: ignore[attr-defined]
    img = Image.open(SAMPLES / "chelsea.jpg")
    # the clip space is empty until reindexed: nothing of the cpu space leaks into it
    assert core.search.search(SearchQuery(image=img, k=3)).results == []
    out = reindex(core)
    assert out["points"] == cpu_points and out["descriptions_retagged"] == cpu_points
    core.close()

    core = Glimpse(_clip_settings(settings, tiny_clip_dir), model=clip_model)
    res = core.search.search(SearchQuery(image=img, k=3)).results
    assert res[0].media_id == ids["chelsea.jpg"]
    d = core.catalog.views_of(ids["page.jpg"])[0].description
    assert d.extra["tagger"] == clip_model.model_id and d.ocr  # re-tagged, OCR kept
    assert all(t.label in set(clip_model.tagger.labels) for t in d.tags
               if t.source == "classifier")
    core.close()
    # the cpu collection is untouched, still its own 384-d space
    back = Glimpse(settings, model=cpu_model)
    assert back.vectors.name == cpu_name and back.vectors.count() == cpu_points  # type: ignore[attr-defined]
    assert back.vectors.spaces["semantic"] == 384
    back.close()
