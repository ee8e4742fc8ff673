"""A real manual page (Debian's libtasn1-doc, prose and a formula) rendered at 150 dpi like
a scan: extraction must keep an upright page upright and read it, and still turn a page that
really is upside down. The ink vote alone called this upright page upside down."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.documents import cer
from indexer.documents.extract import extract
from indexer.documents.layout import detect_rotation
from indexer.domain import ViewInput

PDF = Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf")  # scripts/test.sh installs it


@pytest.fixture(scope="module")
def page():  # type: ignore[no-untyped-def]
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(PDF))
    p = doc[3]
    img = p.render(scale=150 / 72).to_pil().convert("RGB")
    return img, p.get_textpage().get_text_range()


def test_upright_scan_is_not_turned_and_reads_right(page, ocr) -> None:  # type: ignore[no-untyped-def]
    img, text_layer = page
    # the trap: the ink vote proposes a half turn for this upright page
    assert detect_rotation(img, ocr.read(img))[0] == 180
    out = extract(ViewInput("p", img, "page"), "text", ocr)
    assert out["rotation"] == 0 and not out["warnings"], out["warnings"]
    assert cer(out["text"], text_layer) <= 0.03


def test_upside_down_scan_is_still_turned(page, ocr) -> None:  # type: ignore[no-untyped-def]
    img, text_layer = page
    out = extract(ViewInput("p", img.rotate(180), "page"), "text", ocr)
    assert out["rotation"] == 180
    assert cer(out["text"], text_layer) <= 0.03
