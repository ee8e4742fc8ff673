"""Keyboard-only use, a narrow (390 px) screen, and the detail view, on a library uploaded
over HTTP (the page's own upload is covered in test_page_flow.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import SAMPLES, LiveServer, PageKit, clean_shots, new_page, upload_via_api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def library(live_server: LiveServer) -> dict[str, str]:
    clean_shots("keyboard")
    clean_shots("narrow")
    names = ["chelsea.jpg", "coffee.jpg", "rocket.jpg", "astronaut.jpg"]
    return upload_via_api(live_server.url, [SAMPLES / n for n in names])


def focused(page: Any) -> dict[str, Any]:
    return page.evaluate("""() => { const e = document.activeElement; const s = getComputedStyle(e);
        return { id: e.id, tag: e.tagName, text: (e.innerText || e.value || '').slice(0, 60),
                 label: e.getAttribute('aria-label') || '', cls: e.className || '',
                 outline: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth) }; }""")


def tab_to(page: Any, pred: Any, limit: int = 40) -> int:
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if pred(focused(page)):
            return n
    raise AssertionError(f"not reached in {limit} Tab presses; now at {focused(page)}")


def test_keyboard_only(kit: PageKit, library: dict[str, str]) -> None:
    page = kit.page
    page.goto("/")
    page.wait_for_selector("#health:not(:empty)")
    # Tab from the top: the skip link first, then the search box, with a visible focus ring
    page.keyboard.press("Tab")
    f = focused(page)
    assert f["text"] == "Skip to search" and f["outline"] != "none"
    kit.shot("01-skip-link", full_page=False)
    page.keyboard.press("Tab")
    f = focused(page)
    assert f["id"] == "q" and f["outline"] != "none" and f["outlineWidth"] >= 2, f
    page.keyboard.type("a rocket launch")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#search-status').textContent"
                           ".includes('results for')")
    names = page.locator(".card .filename").all_inner_texts()
    assert names[0] == "rocket.jpg", names
    kit.shot("02-searched", full_page=False)

    # on to the first result: its picture opens the detail dialog with Enter, Escape closes
    # it and gives focus back
    n = tab_to(page, lambda f: f["label"] == "Open rocket.jpg")
    assert n <= 16, n
    assert focused(page)["outline"] != "none"
    kit.shot("03-result-focused", full_page=False)
    page.keyboard.press("Enter")
    dialog = page.locator("#detail")
    dialog.locator(".facts").wait_for()
    page.wait_for_function("(() => { const i = document.querySelector('#detail .thumb img');"
                           " return i && i.complete && i.naturalWidth > 0; })()")
    kit.shot("04-detail-dialog", full_page=False)
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    assert focused(page)["label"] == "Open rocket.jpg"

    # the "why" expander opens with Enter
    tab_to(page, lambda f: f["tag"] == "SUMMARY")
    page.keyboard.press("Enter")
    first = page.locator(".card").first
    assert first.locator(".why").get_attribute("open") is not None
    assert first.locator(".why .step").count() >= 2

    # the follow-up box is reachable and Enter sends the question
    tab_to(page, lambda f: f["id"] == "chat-q", limit=60)
    page.keyboard.type("how many faces are in the fourth one?")
    page.keyboard.press("Enter")
    page.locator(".msg.assistant .answer").first.wait_for()
    assert "face" in page.locator(".msg.assistant .answer").first.inner_text()
    assert focused(page)["id"] == "chat-q"
    kit.shot("05-follow-up", full_page=False)


def test_narrow_screen(browser: Any, live_server: LiveServer, library: dict[str, str]) -> None:
    ctx, kit = new_page(browser, live_server.url, "narrow", viewport=(390, 844))
    try:
        page = kit.page
        page.goto("/")
        page.wait_for_selector("#health:not(:empty)")
        kit.shot("01-start")
        page.fill("#q", "a cup of coffee")
        page.press("#q", "Enter")
        page.wait_for_function("document.querySelector('#search-status').textContent"
                               ".includes('results for')")
        assert page.locator(".card .filename").first.inner_text() == "coffee.jpg"
        page.wait_for_function("[...document.querySelectorAll('.card img')]"
                               ".every(i => i.complete && i.naturalWidth > 0)")
        page.locator(".card .why summary").first.click()
        kit.shot("02-results")
        # nothing wider than the screen; one card per row; chat below the results
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        boxes = [c.bounding_box() for c in page.locator(".card").all()]
        assert len({round(b["x"]) for b in boxes if b}) == 1, boxes
        assert all(b and b["width"] <= 390 for b in boxes)
        chat = page.locator(".chat-panel").bounding_box()
        res = page.locator(".results-panel").bounding_box()
        assert chat and res and chat["y"] >= res["y"] + res["height"] - 1
        page.fill("#chat-q", "which of these has a cup?")
        page.press("#chat-q", "Enter")
        page.locator(".msg.assistant .answer").first.wait_for()
        page.locator(".chat-panel").scroll_into_view_if_needed()
        kit.shot("03-chat", full_page=False)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        ctx.close()
    assert not kit.console.errors, kit.console.errors
