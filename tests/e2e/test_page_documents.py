"""A PDF through the page: the Documents filter, the document view with its pages, extracted
key-values and tables rendered as tables, and the JSON/CSV download links."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLES, PageKit, clean_shots, upload_via_api
from tests.unit.service.test_api_media import _pdf_with_text as _invoice_pdf

pytestmark = pytest.mark.e2e


def test_document_view(kit: PageKit, tmp_path: Path) -> None:
    clean_shots("document_view")
    pdf = tmp_path / "invoice.pdf"
    _invoice_pdf(pdf)
    upload_via_api(kit.base_url, [pdf, SAMPLES / "chelsea.jpg"])
    page = kit.page
    page.goto("/")
    page.wait_for_selector("#health:not(:empty)")
    page.check("input[name=kind][value=document]")
    page.fill("#q", "invoice from ACME")
    page.press("#q", "Enter")
    page.wait_for_function("document.querySelector('#results').getAttribute('aria-busy') === null"
                           " && document.querySelector('#search-status').textContent !== ''"
                           " && !document.querySelector('#search-status').textContent"
                           ".startsWith('Searching')")
    status = page.locator("#search-status").inner_text()
    assert " for “invoice from ACME”" in status and not status.startswith("No"), status
    kinds = page.locator(".card .kind-tag").all_inner_texts()
    assert kinds and set(kinds) == {"Document"}, kinds
    first = page.locator(".card").first
    assert "page 1" in first.locator(".filename").inner_text()
    kit.shot("01-search")

    first.get_by_role("button", name="Details").click()
    dialog = page.locator("#detail")
    dialog.locator(".tabs").wait_for()
    assert dialog.locator(".page-btn").count() == 2
    dialog.get_by_role("tab", name="Key-values").click()
    dialog.locator(".extract-panel table").wait_for()
    rows = dialog.locator(".extract-panel tbody tr").all_inner_texts()
    assert any("Invoice No" in r and "4711" in r for r in rows), rows
    # downloads go through fetch (the API key header when keys are on), not bare links
    with page.expect_download() as dl:
        dialog.get_by_role("button", name="Download JSON").click()
    assert dl.value.suggested_filename.endswith("-kv.json")
    assert "4711" in Path(dl.value.path()).read_text()
    kit.shot("02-key-values", full_page=False)

    dialog.get_by_role("tab", name="Tables").click()
    page.wait_for_function("!document.querySelector('.extract-panel').textContent"
                           ".includes('Extracting')")
    with page.expect_download() as dl:
        dialog.get_by_role("button", name="Download CSV").click()
    assert dl.value.suggested_filename.endswith("-tables.csv")
    Path(dl.value.path()).read_text()  # the CSV text the server sent (fetched with headers)

    dialog.get_by_role("tab", name="Text").click()
    dialog.locator(".extract-panel pre").wait_for()
    assert "ACME" in dialog.locator(".extract-panel pre").inner_text()
    dialog.get_by_role("button", name="Page 2").click()
    page.wait_for_function("document.querySelector('.extract-panel pre')?.textContent"
                           ".includes('Quarterly')")
    kit.shot("03-text-page-2", full_page=False)
