"""The in-process runner's lanes: several batches in flight, every job done exactly once,
idle only when all lanes are; and large photos indexed through a bounded view."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.context import Glimpse
from indexer.ingest import accept_path
from indexer.jobs import InProcessRunner

SAMPLES = Path(__file__).resolve().parents[3] / "indexer" / "samples"


def _photos(tmp: Path, n: int) -> list[Path]:
    """n distinct photos (different crops of the samples), so none is a duplicate."""
    bases = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    out = []
    for i in range(n):
        im = bases[i % len(bases)]
        w, h = im.size
        d = 2 + i
        p = tmp / f"p{i}.jpg"
        im.crop((d, d, w - d, h - d)).save(p, quality=90)
        out.append(p)
    return out


def test_two_lanes_run_every_job_once_and_overlap(settings, cpu_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.queue.local_lanes = 2
    settings.model.batch_size = 3
    core = Glimpse(settings, model=cpu_model)
    core.migrate()
    runner = InProcessRunner(core)
    assert runner.lanes == 2
    batches: list[tuple[str, list[str]]] = []
    inside = {"now": 0, "max": 0}
    lock = threading.Lock()
    real = runner.pipeline.run_many

    def spy(job_ids):  # type: ignore[no-untyped-def]
        with lock:
            batches.append((threading.current_thread().name, list(job_ids)))
            inside["now"] += 1
            inside["max"] = max(inside["max"], inside["now"])
        try:
            return real(job_ids)
        finally:
            with lock:
                inside["now"] -= 1

    runner.pipeline.run_many = spy  # type: ignore[method-assign]
    jobs: list[str] = []

    class Hold:  # accept everything first, then let the lanes loose on the queue
        def enqueue_ingest(self, job_id: str) -> None:
            jobs.append(job_id)

    media = [accept_path(core, p, tenant=None, enqueuer=Hold()).media_id
             for p in _photos(tmp_path, 10)]
    for j in jobs:
        runner.enqueue_ingest(j)
    assert runner.wait_idle(timeout=300)
    runner.stop()
    ran = [j for _, b in batches for j in b]
    assert sorted(ran) == sorted(jobs)  # every job exactly once
    assert all(len(b) <= 3 for _, b in batches)
    assert {name for name, _ in batches} == {"glimpse-ingest-0", "glimpse-ingest-1"}
    assert inside["max"] == 2  # two batches were in the pipeline at the same time
    for m in media:
        assert core.catalog.get_media(m).status == "ready"
    assert len(core.vectors.ids()) == 10
    core.close()


def test_batches_are_shared_between_lanes(settings, cpu_model) -> None:  # type: ignore[no-untyped-def]
    settings.queue.local_lanes = 2
    settings.model.batch_size = 16
    core = Glimpse(settings, model=cpu_model)

    def split(lanes: int) -> int:
        settings.queue.local_lanes = lanes
        runner = InProcessRunner(core)
        for j in range(10):
            runner._q.put(f"job{j}")  # the lanes are not started: only the split is looked at
        runner._q.get()  # a lane took the first job and asks how many to take in all
        return runner._batch_size()

    assert split(2) == 5  # 10 waiting jobs: 5 + 5, not 10 + 0
    assert split(1) == 10
    core.close()


def test_large_photo_view_is_bounded_and_keeps_its_size(  # type: ignore[no-untyped-def]
        settings, cpu_model, tmp_path: Path) -> None:
    """A 12 MP phone photo (stored sideways, EXIF orientation 6) is indexed through a view of
    at most limits.image_view_side px; the media keeps the size a person sees; the text is
    read upright; boxes lie on the view."""
    rng = np.random.default_rng(0)
    base = Image.open(SAMPLES / "page.jpg").convert("RGB").resize((4032, 3024))
    noisy = np.clip(np.asarray(base, np.int16) + rng.integers(-6, 7, (3024, 4032, 3)), 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera stored it turned; viewers turn it back upright
    path = tmp_path / "phone.jpg"
    Image.fromarray(noisy.astype(np.uint8)).rotate(90, expand=True).save(
        path, quality=90, exif=exif)
    core = Glimpse(settings, model=cpu_model)
    core.migrate()
    runner = InProcessRunner(core)
    enq: list[str] = []

    class Collect:
        def enqueue_ingest(self, job_id: str) -> None:
            enq.append(job_id)

    mid = accept_path(core, path, tenant=None, enqueuer=Collect()).media_id
    assert runner.run_now(enq[0])["status"] == "done"
    media = core.catalog.get_media(mid)
    assert (media.width, media.height) == (4032, 3024)  # upright, as a person sees it
    (view,) = core.catalog.views_of(mid)
    side = settings.limits.image_view_side
    assert max(view.width, view.height) == side and view.width > view.height
    assert abs(view.width / view.height - 4032 / 3024) < 0.01
    pix = core.view_image(view)
    assert pix.size == (view.width, view.height)  # what answers and search see again later
    d = view.description
    assert "segmentation" in d.ocr_text.lower(), "the page's text is read from the view"
    for line in d.ocr:
        assert 0 <= line.box.x0 < line.box.x1 <= view.width + 1
        assert 0 <= line.box.y0 < line.box.y1 <= view.height + 1
    core.close()


def test_draft_validation_still_catches_truncation() -> None:
    from indexer.errors import CorruptMedia
    from indexer.media.images import load_rgb, validate_image
    from indexer.settings import LimitSettings

    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (2000, 3000, 3), dtype=np.uint8)).save(
        buf, format="JPEG", quality=92)
    data = buf.getvalue()
    assert validate_image(data, LimitSettings()).width == 3000
    try:
        validate_image(data[: len(data) * 2 // 3], LimitSettings())
    except CorruptMedia:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a JPEG cut at 2/3 passed validation")
    small = load_rgb(io.BytesIO(data), max_side=700)  # type: ignore[arg-type]
    assert small.size == (700, 467)
