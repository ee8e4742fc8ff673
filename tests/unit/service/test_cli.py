"""The `glimpse` console script, run as a person would: ingest a folder, search, ask."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.unit.service.conftest import SAMPLES

GLIMPSE = str(Path(sys.executable).with_name("glimpse"))


def _run(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "GLIMPSE_MODEL__OCR": "gated"}
    return subprocess.run([GLIMPSE, *args, "--data-dir", str(data)], capture_output=True,
                          text=True, timeout=600, env=env)


def test_ingest_search_ask(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "notes.txt").write_text("not an image")
    data = tmp_path / "data"

    r = _run("ingest", str(folder), "--quiet", data=data)
    assert r.returncode == 0, r.stderr
    r = _run("ingest", str(folder), data=data)  # again: every file is a duplicate
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    # notes.txt, found in the folder, is skipped quietly (one summary line), not rejected
    assert summary == {**summary, "accepted": 0, "duplicate": 3, "rejected": 0, "skipped": 1}
    assert "rejected" not in r.stderr and "skipped 1 file" in r.stderr
    r = _run("ingest", str(folder / "notes.txt"), data=data)  # named on its own: rejected
    assert r.returncode == 1 and "notes.txt: not a supported" in r.stderr

    r = _run("search", "a cup of coffee", "--json", "-k", "2", data=data)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["results"][0]["filename"] == "coffee.jpg"

    r = _run("search", "--image", str(SAMPLES / "rocket.jpg"), "-k", "1", "--explain", data=data)
    assert r.returncode == 0 and "rocket.jpg" in r.stdout.splitlines()[0]

    r = _run("ask", out["session_id"], "what does the text say in the first one?", data=data)
    assert r.returncode == 0, r.stderr
    assert "result 1" in r.stdout

    r = _run("ask", "s_missing", "hello?", data=data)
    assert r.returncode == 1 and "not found" in r.stderr


def test_cli_with_a_clip_checkpoint(tmp_path: Path) -> None:
    """The two settings of the CLIP backend, from the environment, through the console script:
    ingest, image search (an indexed photo's own pixels come back first: its vector in the
    clip space is the same), text search, and every view tagged by the checkpoint."""
    from indexer.models.clip.tiny import build_tiny_clip

    ckpt = build_tiny_clip(tmp_path / "tiny-clip")
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(SAMPLES / name, folder / name)
    data = tmp_path / "data"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "GLIMPSE_MODEL__OCR": "off", "GLIMPSE_MODEL__EMBED_BACKEND": "clip",
           "GLIMPSE_MODEL__CLIP_MODEL": str(ckpt)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([GLIMPSE, *args, "--data-dir", str(data)], capture_output=True,
                              text=True, timeout=600, env=env)

    r = run("ingest", str(folder), "--quiet")
    assert r.returncode == 0, r.stderr
    for name in ("coffee.jpg", "rocket.jpg"):
        r = run("search", "--image", str(SAMPLES / name), "-k", "3", "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["results"][0]["filename"] == name, out["results"]
    r = run("search", "a cup of coffee", "-k", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["results"]) == 3
    # every view was tagged and embedded by the checkpoint (its model id names it)
    import sqlite3

    with sqlite3.connect(data / "catalog.db") as db:
        rows = [json.loads(d) for (d,) in db.execute("SELECT description FROM views")]
    assert len(rows) == 3
    assert all(d["extra"]["tagger"].startswith("clip:") for d in rows), rows[0]["extra"]
