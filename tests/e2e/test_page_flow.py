"""The whole page in headless Chromium against a real server and the real cpu model: upload
through the drop zone, watch indexing, search by text, read the explanation, ask a follow-up,
search by dropping an image, play a video moment from its start, and the "no good match" state.
Screenshots of every step land in test-output/e2e/."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from tests.e2e.conftest import SAMPLES, PageKit, clean_shots, make_video

pytestmark = pytest.mark.e2e

PHOTOS = ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
LONG = 180_000  # ms: indexing shares 2 cores with other work


def card_names(page: Any) -> list[str]:
    return [x.split(" · ")[0] for x in page.locator(".card .filename").all_inner_texts()]


def search_text(page: Any, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_function("document.querySelector('#results').getAttribute('aria-busy') === null"
                           " && document.querySelector('#search-status').textContent"
                           ".match(/results? for|No results|No good/)")


def drop_file(page: Any, selector: str, name: str, data: bytes, mime: str) -> None:
    """A real drop event carrying a File in its DataTransfer, as a drag from the desktop."""
    dt = page.evaluate_handle(
        """([name, b64, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: mime }));
            return dt;
        }""", [name, base64.b64encode(data).decode(), mime])
    page.dispatch_event(selector, "dragenter", {"dataTransfer": dt})
    page.dispatch_event(selector, "dragover", {"dataTransfer": dt})
    page.dispatch_event(selector, "drop", {"dataTransfer": dt})


def edited_copy(path: Path) -> bytes:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    crop = ImageOps.mirror(img.crop((w // 10, h // 10, w - w // 10, h - h // 10)))
    buf = io.BytesIO()
    crop.save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def test_upload_search_explain_chat_drop_and_video(kit: PageKit, tmp_path: Path) -> None:
    clean_shots("upload_search")
    page = kit.page
    page.goto("/")
    page.wait_for_selector("#health:not(:empty)")
    # boot() fills the health line first, then lists the library and opens the panel when it
    # is empty: wait for that second request instead of racing it
    page.wait_for_selector("#upload-panel[open]", timeout=10_000)
    assert page.locator("#upload-panel").get_attribute("open") is not None, \
        "an empty library opens the upload panel"
    kit.shot("01-empty")

    # -- upload: three photos, one video, one file that is not media --------------------
    video = tmp_path / "clip.mp4"
    shots = make_video(video)
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture\n")
    # the server refuses it with a 415, which Chromium logs as a failed resource load
    kit.console.expect("status of 415")
    page.set_input_files("#upload-input", [str(SAMPLES / n) for n in PHOTOS] + [str(video),
                                                                                  str(bad)])
    assert page.locator(".up-item").count() == 5
    page.wait_for_selector(".up-item[data-state='uploading'], .up-item[data-state='indexing']",
                           timeout=LONG)
    kit.shot("02-uploading")
    page.wait_for_function(
        "document.querySelectorAll('.up-item[data-state=done]').length === 4"
        " && document.querySelectorAll('.up-item[data-state=failed]').length === 1",
        timeout=LONG)
    failed = page.locator(".up-item[data-state='failed']")
    assert failed.get_attribute("data-filename") == "notes.txt"
    err = failed.locator(".up-error").inner_text()
    assert err.startswith("notes.txt:") and "not a supported" in err, err
    for n in [*PHOTOS, "clip.mp4"]:
        item = page.locator(f".up-item[data-filename='{n}']")
        assert item.locator(".up-status").inner_text().startswith("Indexed")
        assert item.locator("progress").evaluate("p => p.value") == 1
    kit.shot("03-indexed")

    # -- search by text: the cat photo first ------------------------------------------
    search_text(page, "a cat")
    assert card_names(page)[0] == "chelsea.jpg", card_names(page)
    first = page.locator(".card").first
    assert "relevant" in first.locator(".score-text").inner_text()
    page.wait_for_function("[...document.querySelectorAll('.card img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    kit.shot("04-search-text")

    # -- the "why" expander: numbered steps with their evidence --------------------------
    first.locator(".why summary").click()
    steps = first.locator(".why .step")
    assert steps.count() >= 2
    assert "'cat'" in steps.first.inner_text()
    assert first.locator(".why .ev").count() >= 1
    kit.shot("05-explanation")

    # -- follow-up question: answer appears, the referred result is highlighted ----------
    page.fill("#chat-q", "which of these has a cat?")
    page.press("#chat-q", "Enter")
    answer = page.locator(".msg.assistant .answer").last
    answer.wait_for()
    assert "cat" in answer.inner_text().lower(), answer.inner_text()
    assert "referred" in (first.get_attribute("class") or "")
    kit.shot("06-follow-up")

    # -- search by dropping an edited copy of a photo onto the example drop zone ---------
    page.fill("#q", "")
    drop_file(page, "#query-drop", "query.jpg", edited_copy(SAMPLES / "coffee.jpg"),
              "image/jpeg")
    page.wait_for_selector("#query-preview:not([hidden])")
    page.wait_for_function("document.querySelector('#search-status').textContent"
                           ".includes('your example image')")
    assert card_names(page)[0] == "coffee.jpg", card_names(page)
    kit.shot("07-search-by-image")
    page.click("#query-clear")
    assert page.locator("#query-preview").is_hidden()

    # -- a video moment: the astronaut shot of the clip, boxes from a follow-up ----------
    search_text(page, "an astronaut")
    first = page.locator(".card").first
    assert card_names(page)[0] == "clip.mp4", card_names(page)
    t0, t1 = shots[1]
    moment = first.locator(".moment").inner_text()
    assert moment == f"0:{int(t0):02d}–0:{int(t1):02d}", moment
    page.fill("#chat-q", "how many faces are in the first one?")
    page.press("#chat-q", "Enter")
    page.wait_for_function("document.querySelectorAll('.msg.assistant .answer').length === 1")
    assert "face" in page.locator(".msg.assistant .answer").last.inner_text()
    first.locator("svg.boxes g.box-answer rect").first.wait_for()
    kit.shot("08-video-result-with-box")

    first.locator(".thumb-btn").click()
    video_el = first.locator("video")
    video_el.wait_for()
    t_start = float(video_el.get_attribute("data-t-start") or "nan")
    assert t_start == pytest.approx(t0, abs=0.25)
    page.wait_for_function(
        "([v, t]) => v.readyState >= 2 && Math.abs(v.currentTime - t) < 0.75",
        arg=[video_el.element_handle(), t_start], timeout=60_000)
    now = video_el.evaluate("v => { v.pause(); return v.currentTime; }")
    assert t_start - 0.05 <= now <= t1 + 0.05, (now, t_start)
    kit.shot("09-video-playing")

    # -- the video's details: its shots, a click on one seeks there ------------------------
    first.get_by_role("button", name="Details").click()
    dialog = page.locator("#detail")
    dialog.locator(".shot").first.wait_for()
    assert dialog.locator(".shot").count() == 3
    page.wait_for_function("[...document.querySelectorAll('.shot img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    dialog.locator(".shot").nth(2).click()
    page.wait_for_function(
        "t => { const v = document.querySelector('.detail-video');"
        " return v.readyState >= 1 && Math.abs(v.currentTime - t) < 0.75; }",
        arg=shots[2][0])
    page.evaluate("document.querySelector('.detail-video').pause()")
    kit.shot("10-video-details", full_page=False)
    page.keyboard.press("Escape")
    assert dialog.is_hidden()

    # -- nothing matches: a clear "no good match" state ----------------------------------
    search_text(page, "zzzz qqqq xyzzy")
    notice = page.locator("#notice")
    assert notice.is_visible() and "No good match" in notice.inner_text()
    kit.shot("11-no-good-match")
