"""Printed hints reach the same data dir from any shell."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from service.cli import _hint_args


def test_hint_carries_a_data_dir_from_the_environment(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GLIMPSE_DATA_DIR", str(tmp_path / "lib"))
    # another terminal may not have GLIMPSE_DATA_DIR: the hint must say it
    assert _hint_args(argparse.Namespace(data_dir=None)) == f" --data-dir {tmp_path / 'lib'}"
    assert _hint_args(argparse.Namespace(data_dir="rel")) == f" --data-dir {Path('rel').resolve()}"
    monkeypatch.delenv("GLIMPSE_DATA_DIR")
    assert _hint_args(argparse.Namespace(data_dir=None)) == ""  # the default needs nothing
    assert _hint_args(argparse.Namespace(data_dir=str(tmp_path / "xdg" / "glimpse"))) == ""
