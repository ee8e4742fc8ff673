"""CLI and server on one data dir at once, as a person would run them: `glimpse serve` in one
terminal, `glimpse ingest` / `search` / `ask` in another (through the server), and a second
writer forced to run locally at the same time. Nothing is lost, the server sees both."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.unit.service.conftest import SAMPLES

GLIMPSE = str(Path(sys.executable).with_name("glimpse"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "GLIMPSE_MODEL__OCR": "gated", "GLIMPSE_QUEUE__LOCAL_LANES": "1"}
ENV.pop("GLIMPSE_API_KEY", None)
ENV.pop("GLIMPSE_ADMIN_KEY", None)


def _cli(*args: str, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([GLIMPSE, *args, "--data-dir", str(data)], env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _done(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=600)
    return p.returncode, out, err


def _wait_server(data: Path, proc: subprocess.Popen[str], timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    ep = data / "server.json"
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if ep.exists():
            url = json.loads(ep.read_text())["url"]
            try:
                if httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200:
                    return str(url)
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    raise AssertionError("the server did not come up")


def _folder(tmp: Path, name: str, files: list[str]) -> Path:
    d = tmp / name
    d.mkdir()
    for f in files:
        shutil.copy(SAMPLES / f, d / f)
    return d


def test_cli_and_server_share_one_live_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = _folder(tmp_path, "a", ["coffee.jpg", "chelsea.jpg"])
    (a / "README.md").write_text("# not media")
    b = _folder(tmp_path, "b", ["rocket.jpg", "astronaut.jpg"])

    server = subprocess.Popen([GLIMPSE, "serve", "--data-dir", str(data), "--port", "0"],
                              env=ENV, text=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        url = _wait_server(data, server)
        # a second server on the same data dir is refused, with the first one's address
        rc, _, err = _done(_cli("serve", "--port", "0", data=data))
        assert rc == 1 and url in err

        # two writers at the same time: one through the server, one in its own process
        via_server = _cli("ingest", str(a), data=data)
        local = _cli("ingest", str(b), "--local", data=data)
        rc1, out1, err1 = _done(via_server)
        rc2, out2, err2 = _done(local)
        assert rc1 == 0, err1
        assert rc2 == 0, err2
        s1 = json.loads(out1.strip().splitlines()[-1])
        s2 = json.loads(out2.strip().splitlines()[-1])
        assert s1["server"] == url and s1["done"] == 2 and s1["skipped"] == 1
        assert "skipped 1 file that is not an image, video or PDF (README.md)" in err1
        assert "rejected" not in err1
        assert "server" not in s2 and s2["done"] == 2

        # the running server sees the local writer's vectors, without a restart
        rc, out, err = _done(_cli("search", "a rocket launch", "--json", "-k", "4",
                                  data=data))
        assert rc == 0, err
        res = json.loads(out)
        names = [r["filename"] for r in res["results"]]
        assert names[0] == "rocket.jpg"
        assert set(names) == {"coffee.jpg", "chelsea.jpg", "rocket.jpg", "astronaut.jpg"}
        # and the session it opened lives in the server: ask through it
        rc, out, err = _done(_cli("ask", res["session_id"], "how many people are in the "
                                  "second one?", data=data))
        assert rc == 0, err
        assert out.strip()

        # the printed hint carries the data dir, and runs as printed
        rc, out, err = _done(_cli("search", "a cup of coffee", "-k", "1", data=data))
        assert rc == 0, err
        hint = out.strip().splitlines()[-1]
        assert f"--data-dir {data}" in hint
        cmd = hint.split("ask a follow-up: ", 1)[1].rstrip(")")
        argv = cmd.replace('"..."', '"what does the text say?"')
        r = subprocess.run(argv, shell=True, env=ENV, capture_output=True, text=True,
                           timeout=300)  # exactly as printed (the program path included)
        assert r.returncode == 0, r.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert not (data / "server.json").exists()  # withdrawn on a clean stop

    # a server killed without a chance to clean up leaves a stale file: ignored and removed
    (data / "server.json").write_text(json.dumps({"pid": 2**22 + 12345,
                                                   "url": "http://127.0.0.1:9"}))
    rc, out, err = _done(_cli("search", "a cat", "--json", "-k", "1", data=data))
    assert rc == 0, err
    assert json.loads(out)["results"][0]["filename"] == "chelsea.jpg"
    assert not (data / "server.json").exists()
