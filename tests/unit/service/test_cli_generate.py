"""`glimpse generate "PROMPT" --out FILE` in this process: the PNG, its checks and sources."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.unit.service.conftest import SAMPLES


def test_generate_writes_the_image_and_prints_checks(settings, capsys, tmp_path: Path  # type: ignore[no-untyped-def]
                                                      ) -> None:
    from service.cli import main

    assert main(["ingest", "--local", "--quiet", "--data-dir", str(settings.data_dir),
                 str(SAMPLES / "chelsea.jpg")]) == 0
    capsys.readouterr()
    out = tmp_path / "cat.png"
    assert main(["generate", "--local", "--data-dir", str(settings.data_dir), "two cats",
                 "--out", str(out), "--seed", "5", "--size", "320x240"]) == 0
    printed = capsys.readouterr().out
    assert Image.open(out).size == (320, 240)
    assert "2 cat" in printed and "from m_" in printed and "grabcut" in printed
    # the same seed writes the same pixels
    again = tmp_path / "again.png"
    assert main(["generate", "--local", "--data-dir", str(settings.data_dir), "two cats",
                 "--out", str(again), "--seed", "5", "--size", "320x240"]) == 0
    assert Image.open(out).tobytes() == Image.open(again).tobytes()
    # a concept the index lacks: exit 1, named, no file
    capsys.readouterr()
    missing = tmp_path / "no.png"
    assert main(["generate", "--local", "--data-dir", str(settings.data_dir), "a giraffe",
                 "--out", str(missing)]) == 1
    assert "'giraffe'" in capsys.readouterr().err and not missing.exists()
