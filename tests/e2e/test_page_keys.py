"""The page on a server with API keys on: it asks for a key, keeps it for the tab only
(sessionStorage), sends it as a header, and every picture, video and download works through
short-lived signed URLs — no key ever in a URL. Another tenant's key sees none of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SAMPLES, LiveServer, PageKit, _free_port, new_page

pytestmark = pytest.mark.e2e
LONG = 180_000


@pytest.fixture(scope="module")
def keyed_server(cpu_model, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    import uvicorn

    from indexer.context import Glimpse
    from indexer.keys import KeyStore
    from indexer.settings import Settings
    from service.app import create_app

    data = tmp_path_factory.mktemp("e2e-keys")
    settings = Settings(data_dir=data, environment="test")
    settings.auth.key_cache_s = 0.0
    core = Glimpse(settings, model=cpu_model)
    core.migrate()
    store = KeyStore(core.catalog)
    keys = {"acme": store.create("acme", "write", "e2e")[0],
            "globex": store.create("globex", "write", "e2e")[0]}
    app = create_app(core=core)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", server=server, thread=thread), keys
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture()
def keyed_kit(browser: Any, keyed_server: Any) -> Iterator[PageKit]:
    # the page's real Content-Security-Policy applies here (other e2e tests bypass it so
    # Playwright can evaluate their string predicates); a violation is a console error
    ctx, k = new_page(browser, keyed_server[0].url, "keys", bypass_csp=False)
    try:
        yield k
    finally:
        ctx.close()
    assert not k.console.errors, k.console.errors


def _images_loaded(page: Any, selector: str) -> None:
    # polled from here: the page's CSP forbids the string evaluation wait_for_function uses
    deadline = time.monotonic() + 60
    while True:
        ok = page.locator(selector).evaluate_all(
            "els => els.length > 0 && els.every(i => i.complete && i.naturalWidth > 0)")
        if ok:
            return
        assert time.monotonic() < deadline, f"{selector} did not load"
        time.sleep(0.1)


def test_page_with_keys_on(keyed_kit: PageKit, keyed_server: Any, browser: Any,
                           tmp_path: Path) -> None:
    page, keys = keyed_kit.page, keyed_server[1]
    # boot lists the library: 401 without a key (Chromium logs the failed load)
    keyed_kit.console.expect("status of 401")
    page.goto("/")
    page.wait_for_selector("#key-form:not([hidden])")
    assert "needs an API key" in page.locator("#key-hint").inner_text()
    page.fill("#api-key", keys["acme"])
    page.click("#key-use")
    expect(page.locator("#key-hint")).to_contain_text("saved")
    assert page.evaluate("sessionStorage.getItem('glimpse.apiKey')") == keys["acme"]
    assert page.locator("#api-key").input_value() == ""  # not left in the field

    # upload through the page (the header goes with the XHR), then search
    page.locator("#upload-panel summary").click()
    page.set_input_files("#upload-input", [str(SAMPLES / "chelsea.jpg"),
                                           str(SAMPLES / "coffee.jpg")])
    expect(page.locator(".up-item[data-state=done]")).to_have_count(2, timeout=LONG)
    page.fill("#q", "a cat")
    page.press("#q", "Enter")
    expect(page.locator("#search-status")).to_contain_text("results for", timeout=LONG)
    assert page.locator(".card .filename").all_inner_texts()[0] == "chelsea.jpg"
    _images_loaded(page, ".card img")
    srcs = page.locator(".card img").evaluate_all("els => els.map(e => e.src)")
    assert srcs and all("sig=" in s and "exp=" in s and keys["acme"] not in s for s in srcs)

    # the detail view: a 1024 px picture through the same signed URL, a signed download
    page.locator(".card .thumb-btn").first.click()
    big = page.locator("#detail .thumb.big img")
    big.wait_for()
    _images_loaded(page, "#detail .thumb.big img")
    assert "size=1024" in (big.get_attribute("src") or "")
    href = page.get_by_role("link", name="Download the original").get_attribute("href") or ""
    assert "sig=" in href and keys["acme"] not in href
    r = page.request.get(href)
    assert r.status == 200 and r.body() == (SAMPLES / "chelsea.jpg").read_bytes()
    # ... and a signed URL opens only the path it was made for
    assert page.request.get(href.replace("/file", "/thumbnail")).status == 401
    keyed_kit.console.expect("status of 401")
    page.keyboard.press("Escape")

    # follow-up question with the key
    page.fill("#chat-q", "how many faces are in the first one?")
    page.press("#chat-q", "Enter")
    expect(page.locator(".msg.assistant .answer")).to_have_count(1, timeout=LONG)

    # another tab of the same browser profile starts without the key (sessionStorage), and
    # another tenant's key sees an empty library
    ctx2, k2 = new_page(browser, keyed_server[0].url, "keys-globex", bypass_csp=False)
    try:
        p2 = k2.page
        k2.console.expect("status of 401")
        p2.goto("/")
        p2.wait_for_selector("#key-form:not([hidden])")
        assert p2.evaluate("sessionStorage.getItem('glimpse.apiKey')") is None
        p2.fill("#api-key", keys["globex"])
        p2.click("#key-use")
        p2.fill("#q", "a cat")
        p2.press("#q", "Enter")
        expect(p2.locator("#search-status")).to_contain_text("No results", timeout=LONG)
        assert p2.locator(".card").count() == 0
        # a wrong key is refused with a clear hint
        k2.console.expect("status of 401")
        p2.fill("#api-key", "glk_not-a-key")
        p2.click("#key-use")
        expect(p2.locator("#key-hint")).to_contain_text("refused")
        assert not k2.console.errors, k2.console.errors
    finally:
        ctx2.close()
