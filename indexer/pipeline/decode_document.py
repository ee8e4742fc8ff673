"""Documents (PDF): each page becomes a view, rendered with pypdfium2 (its renderer ships in
the wheel); the page's own text layer is kept as evidence beside OCR."""

from __future__ import annotations

from pathlib import Path

from indexer.documents.pdf import render_pdf
from indexer.domain import ViewInput
from indexer.pipeline.decoded import Decoded, DecodedView
from indexer.settings import Settings


def validate_document(path: Path, settings: Settings) -> None:
    """Refuse what can never be indexed (encrypted, corrupt, empty) at upload time: open the
    document and render nothing (max_pages=0 is not allowed, so render one small page)."""
    render_pdf(path, max_pages=1, dpi=24, max_page_pixels=1_000_000)


def decode_document(media_id: str, path: Path, settings: Settings) -> Decoded:
    lim = settings.limits
    res = render_pdf(path, max_pages=lim.max_pdf_pages, max_page_pixels=lim.max_pdf_page_pixels,
                     max_total_pixels=lim.max_pdf_total_pixels)
    views = [
        DecodedView(
            ViewInput(view_id=f"{media_id}:{p.index}", image=p.image, kind="page",
                      page=p.index + 1, text_layer=p.text_layer or None),
            p.index, store_image=True,
        )
        for p in res.pages
    ]
    first = res.pages[0].image if res.pages else None
    return Decoded(views, warnings=list(res.warnings),
                   width=first.width if first else None, height=first.height if first else None)
