"""Objects in the page: a search for "two cats" draws both cats' boxes on the first card
when its explanation is opened, and a follow-up count draws the answer's boxes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import PageKit, clean_shots, upload_via_api
from tests.e2e.test_page_flow import card_names, search_text
from tests.unit.service.test_api_objects import side_by_side

pytestmark = pytest.mark.e2e


def test_search_by_count_draws_the_boxes(kit: PageKit, tmp_path: Path) -> None:
    clean_shots("search_by_count")
    files = {"cats.png": side_by_side("chelsea", "chelsea"),
             "cup_cat.png": side_by_side("coffee", "chelsea")}
    paths = []
    for name, im in files.items():
        im.save(tmp_path / name)
        paths.append(tmp_path / name)
    upload_via_api(kit.base_url, paths)
    page = kit.page
    page.goto(kit.base_url)
    search_text(page, "two cats")
    assert card_names(page)[:2] == ["cats.png", "cup_cat.png"], card_names(page)
    first = page.locator(".card").first
    first.locator(".why summary").click()
    assert first.locator(".why .step", has_text="the detector boxed 2").count() == 1
    rects = first.locator("svg.boxes g.box-why rect")
    rects.first.wait_for()
    labels = first.locator("svg.boxes g.box-why text").evaluate_all(
        "els => els.map(e => e.textContent)")
    assert sum(t.startswith("cat") for t in labels) == 2, labels  # each cat once
    kit.shot("01-two-cats-boxes")

    page.fill("#chat-q", "how many cats are in the second one?")
    page.press("#chat-q", "Enter")
    page.wait_for_function("document.querySelectorAll('.msg.assistant .answer').length === 1")
    assert page.locator(".msg.assistant .answer").last.inner_text() == "'cat': 1 in result 2."
    second = page.locator(".card").nth(1)
    answer_rects = second.locator("svg.boxes g.box-answer rect")
    answer_rects.first.wait_for()  # drawn once the view's size is fetched
    assert answer_rects.count() == 1
    kit.shot("02-count-answer-box")
