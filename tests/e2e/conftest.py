"""End-to-end fixtures: a real uvicorn serving the real app (real cpu model) on a free local
port, and headless Chromium (Debian's /usr/bin/chromium) driven by Playwright."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "indexer" / "samples"
SHOTS = ROOT / "test-output" / "e2e"
CHROMIUM = os.environ.get("GLIMPSE_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
# Console messages that are not the page's fault: none so far. Keep this list short.
CONSOLE_ALLOW: tuple[str, ...] = ()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: Any
    thread: threading.Thread


@pytest.fixture(scope="module")
def live_server(cpu_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """uvicorn in a thread, with its own data dir, sharing the session's cpu model."""
    import uvicorn

    from indexer.context import Glimpse
    from indexer.settings import Settings
    from service.app import create_app

    data = tmp_path_factory.mktemp("e2e-data")
    settings = Settings(data_dir=data, environment="test")
    app = create_app(core=Glimpse(settings, model=cpu_model))
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    pw_sync = pytest.importorskip("playwright.sync_api")
    with pw_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                               headless=True)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Console:
    """Console errors and uncaught page errors. A test that provokes an error on purpose (an
    upload the server must refuse: Chromium logs every 4xx response) declares it with
    `expect`; each declaration excuses exactly one matching message."""

    errors: list[str] = field(default_factory=list)
    all: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect(self, fragment: str) -> None:
        self.expected.append(fragment)

    def on_message(self, msg: Any) -> None:
        text = f"{msg.type}: {msg.text}"
        self.all.append(text)
        if msg.type != "error" or any(a in msg.text for a in CONSOLE_ALLOW):
            return
        for i, frag in enumerate(self.expected):
            if frag in msg.text:
                del self.expected[i]
                return
        self.errors.append(text)

    def on_page_error(self, err: Any) -> None:
        self.errors.append(f"pageerror: {err}")


@dataclass
class PageKit:
    page: Any
    console: Console
    base_url: str
    name: str

    def shot(self, step: str, full_page: bool = True) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def new_page(browser: Any, base_url: str, name: str,
             viewport: tuple[int, int] = (1280, 900),
             bypass_csp: bool = True) -> tuple[Any, PageKit]:
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP
    # (script-src 'self') forbids; test_page_keys.py runs under the real policy
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                              base_url=base_url, bypass_csp=bypass_csp)
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_page_error)
    return ctx, PageKit(page=page, console=console, base_url=base_url, name=name)


@pytest.fixture()
def kit(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[PageKit]:
    """A fresh browser context at 1280×900; console errors fail the test at teardown."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("test_", "", 1)
    ctx, k = new_page(browser, live_server.url, name)
    try:
        yield k
    finally:
        ctx.close()
    assert not k.console.errors, k.console.errors


def make_video(path: Path, fps: int = 10, seconds: float = 2.0) -> list[tuple[float, float]]:
    """Three distinct shots of `seconds` each — solid red, the astronaut photo, solid blue —
    as h264/yuv420p MP4. Returns the true (t_start, t_end) of each shot."""
    import av
    from PIL import Image

    w, h = 320, 240
    shots = [Image.new("RGB", (w, h), (210, 40, 40)),
             Image.open(SAMPLES / "astronaut.jpg").convert("RGB").resize((w, h)),
             Image.new("RGB", (w, h), (40, 70, 220))]
    n = int(seconds * fps)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "g": str(fps)}
        for img in shots:
            for _ in range(n):
                for pkt in s.encode(av.VideoFrame.from_image(img)):
                    c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return [(i * seconds, (i + 1) * seconds) for i in range(len(shots))]


def clean_shots(prefix: str) -> None:
    if SHOTS.exists():
        for p in SHOTS.glob(f"{prefix}*.png"):
            p.unlink()


def upload_via_api(base_url: str, paths: list[Path], timeout: float = 240) -> dict[str, str]:
    """Upload files over HTTP (not through the page) and wait until indexed. name -> media_id"""
    import httpx

    with httpx.Client(base_url=base_url, timeout=120) as c:
        r = c.post("/v1/media", files=[("files", (p.name, p.read_bytes())) for p in paths])
        assert r.status_code == 202, r.text
        items = r.json()["items"]
        deadline = time.monotonic() + timeout
        pending = {i["job_id"] for i in items if i["job_id"]}
        while pending:
            assert time.monotonic() < deadline, f"jobs still pending: {pending}"
            for j in list(pending):
                body = c.get(f"/v1/jobs/{j}").json()
                if body["status"] in ("done", "failed"):
                    assert body["status"] == "done", body
                    pending.discard(j)
            time.sleep(0.2)
    return {i["filename"]: i["media_id"] for i in items}
