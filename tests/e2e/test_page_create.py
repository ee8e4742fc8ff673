"""The Create panel: a prompt becomes an image made from the uploaded library, shown with its
checks and the source images it was made from; a concept the library lacks is named."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import SAMPLES, LiveServer, PageKit, clean_shots, upload_via_api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def library(live_server: LiveServer) -> dict[str, str]:
    clean_shots("create")
    return upload_via_api(live_server.url, [SAMPLES / n for n in ("chelsea.jpg", "coffee.jpg")])


def test_create_shows_image_checks_and_sources(kit: PageKit, library: dict[str, str]) -> None:
    page = kit.page
    page.goto("/")
    page.wait_for_selector("#health:not(:empty)")
    page.click("#create-panel summary")
    page.fill("#create-prompt", "a cat next to a cup")
    page.fill("#create-seed", "4")
    page.click("#create-btn")
    page.wait_for_function("document.querySelector('#create-status').textContent"
                           ".includes('checks confirmed')", timeout=120_000)
    page.wait_for_function("document.querySelector('.create-image')?.naturalWidth > 0")
    assert page.eval_on_selector(".create-image", "i => i.naturalWidth") == 512
    names = page.locator(".create-checks li strong").all_inner_texts()
    assert names == ["1 cat", "1 cup", "cat next to cup"], names
    n_ok = page.locator(".create-checks li.check-ok").count()
    status = page.locator("#create-status").inner_text()
    assert status.startswith(f"{n_ok} of 3 checks confirmed"), status
    # every source is linked and its thumbnail loads (signed URLs when keys are on)
    hrefs = page.eval_on_selector_all(".create-sources a", "as => as.map(a => a.href)")
    assert len(hrefs) == 2 and all("/file" in h for h in hrefs), hrefs
    page.wait_for_function("[...document.querySelectorAll('.create-sources img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    linked = {h.split("/v1/media/")[1].split("/")[0] for h in hrefs}
    assert linked == {library["chelsea.jpg"], library["coffee.jpg"]}
    kit.shot("create-01-result")

    # a concept the library does not have: named, nothing drawn
    kit.console.expect("422")
    page.fill("#create-prompt", "a giraffe")
    page.click("#create-btn")
    page.wait_for_function("document.querySelector('#create-status').textContent"
                           ".includes('giraffe')")
    assert "nothing showing 'giraffe'" in page.locator("#create-status").inner_text()
    assert page.locator(".create-image").count() == 0
    kit.shot("create-02-missing")
