"""Render PDF pages to images with pypdfium2, keeping each page's text layer as evidence.

Guards (never a hang on hostile input):
- password-protected / unsupported security handler -> `UnsupportedMedia`
- unreadable bytes -> `CorruptMedia`; empty input or no pages -> `EmptyMedia`
- page bomb (page count above `max_pages`) -> first `max_pages` pages and a warning
- absurd page size -> rendered scaled down to `max_page_pixels` with a warning; a page whose
  shorter side would drop under `min_side` pixels at that budget -> `MediaTooLarge`.
- page-size bomb (many pages of a huge MediaBox) -> all pages share `max_total_pixels`, so a
  document's rendered pixels (what stays in memory until indexed) are bounded, whatever it
  declares; pages are rendered one at a time and each bitmap freed before the next.
Text-line boxes come from pdfium's text rectangles and are mapped to pixels on the rendered
image (crop box origin and /Rotate honoured).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from indexer.domain import Box, OcrLine
from indexer.errors import CorruptMedia, EmptyMedia, MediaTooLarge, UnsupportedMedia

log = logging.getLogger(__name__)

DEFAULT_DPI = 150
DEFAULT_MAX_PAGE_PIXELS = 12_000_000
MIN_SIDE = 8

# pdfium FPDF_GetLastError codes (pypdfium2.raw.FPDF_ERR_*), repeated so importing this
# module does not need the raw bindings.
_ERR_FILE, _ERR_FORMAT, _ERR_PASSWORD, _ERR_SECURITY = 2, 3, 4, 5


@dataclass
class PdfPage:
    index: int  # 0-based page number in the document
    image: Image.Image
    text_layer: str
    text_lines: list[OcrLine] = field(default_factory=list)  # pixel boxes on `image`, score 1
    width_pt: float = 0.0
    height_pt: float = 0.0
    scale: float = 1.0  # pixels per PDF point actually used
    rotation: int = 0  # the page's /Rotate, degrees clockwise


@dataclass
class PdfResult:
    pages: list[PdfPage]
    page_count: int  # pages in the document, rendered or not
    warnings: list[str] = field(default_factory=list)


def _open(source: str | Path | bytes, password: str | None) -> object:
    import pypdfium2 as pdfium

    if isinstance(source, bytes | bytearray):
        if not source:
            raise EmptyMedia("empty PDF")
        if not bytes(source[:1024]).lstrip().startswith(b"%PDF") and b"%PDF" not in source[:1024]:
            raise CorruptMedia("not a PDF (no %PDF header)")
        data: str | bytes = bytes(source)
    else:
        p = Path(source)
        if not p.is_file():
            raise CorruptMedia(f"PDF not found: {p.name}")
        if p.stat().st_size == 0:
            raise EmptyMedia("empty PDF")
        data = str(p)
    try:
        return pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == _ERR_PASSWORD:
            raise UnsupportedMedia("password-protected PDF", detail={"reason": "password"}) from exc
        if code == _ERR_SECURITY:
            raise UnsupportedMedia(
                "PDF uses an unsupported security handler", detail={"reason": "security"}
            ) from exc
        raise CorruptMedia(f"unreadable PDF: {exc}", detail={"pdfium_error": code}) from exc


def _page_scale(w_pt: float, h_pt: float, dpi: float, max_page_pixels: int) -> tuple[float, bool]:
    scale = dpi / 72.0
    if w_pt * h_pt * scale * scale > max_page_pixels:
        return math.sqrt(max_page_pixels / (w_pt * h_pt)), True
    return scale, False


def _to_pixels(
    rect: tuple[float, float, float, float],
    crop: tuple[float, float, float, float],
    scale: float,
    rotation: int,
) -> Box:
    """PDF user-space rect (l, b, r, t) -> pixel box on the rendered (rotated) page."""
    cl, cb, cr, ct = crop
    cw, ch = cr - cl, ct - cb
    rl, b, r, t = rect
    # unrotated page: origin top-left, y down, in points
    x0, x1 = rl - cl, r - cl
    y0, y1 = ct - t, ct - b
    if rotation == 90:  # page turned clockwise: (x, y) -> (ch - y, x)
        x0, y0, x1, y1 = ch - y1, x0, ch - y0, x1
    elif rotation == 180:
        x0, y0, x1, y1 = cw - x1, ch - y1, cw - x0, ch - y0
    elif rotation == 270:  # (x, y) -> (y, cw - x)
        x0, y0, x1, y1 = y0, cw - x1, y1, cw - x0
    return Box(x0 * scale, y0 * scale, x1 * scale, y1 * scale)


def _text_lines(textpage: object, crop: tuple[float, float, float, float], scale: float,
                rotation: int) -> list[OcrLine]:
    tp = textpage
    lines: list[OcrLine] = []
    n = tp.count_rects()  # type: ignore[attr-defined]
    for i in range(n):
        rect = tp.get_rect(i)  # type: ignore[attr-defined]
        text = tp.get_text_bounded(*rect).strip()  # type: ignore[attr-defined]
        if not text:
            continue
        text = " ".join(text.split())
        lines.append(OcrLine(text=text, score=1.0, box=_to_pixels(rect, crop, scale, rotation)))
    return lines


def render_pdf(
    source: str | Path | bytes,
    *,
    max_pages: int = 200,
    dpi: float = DEFAULT_DPI,
    max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS,
    password: str | None = None,
    min_side: int = MIN_SIDE,
    max_total_pixels: int | None = None,
) -> PdfResult:
    """Render up to `max_pages` pages of a PDF (path or bytes) to RGB images, each at most
    `max_page_pixels` and all together at most `max_total_pixels`."""
    if max_pages < 1:
        raise ValueError("max_pages must be >= 1")
    doc = _open(source, password)
    warnings: list[str] = []
    pages: list[PdfPage] = []
    try:
        count = len(doc)  # type: ignore[arg-type]
        if count == 0:
            raise EmptyMedia("PDF has no pages")
        if count > max_pages:
            warnings.append(f"PDF has {count} pages; only the first {max_pages} were rendered")
        n = min(count, max_pages)
        if max_total_pixels is not None and max_page_pixels * n > max_total_pixels:
            max_page_pixels = max(min_side * min_side * 16, max_total_pixels // n)
            warnings.append(f"{n} pages share a {max_total_pixels} pixel budget: each is "
                            f"rendered at most {max_page_pixels} pixels")
        for i in range(n):
            try:
                page = doc[i]  # type: ignore[index]
            except Exception as exc:  # a broken page object: skip it, keep the rest
                warnings.append(f"page {i + 1}: unreadable ({exc})")
                continue
            try:
                pages.append(_render_page(page, i, dpi, max_page_pixels, min_side, warnings))
            finally:
                page.close()
    finally:
        doc.close()  # type: ignore[attr-defined]
    if not pages:
        raise CorruptMedia("no page of the PDF could be rendered", detail={"warnings": warnings})
    return PdfResult(pages=pages, page_count=count, warnings=warnings)


def _render_page(page: object, i: int, dpi: float, max_page_pixels: int, min_side: int,
                 warnings: list[str]) -> PdfPage:
    pg = page
    w_pt, h_pt = pg.get_size()  # type: ignore[attr-defined]
    rotation = int(pg.get_rotation()) % 360  # type: ignore[attr-defined]
    if w_pt <= 0 or h_pt <= 0:
        raise CorruptMedia(f"page {i + 1} has an empty media box")
    scale, capped = _page_scale(w_pt, h_pt, dpi, max_page_pixels)
    if capped:
        warnings.append(
            f"page {i + 1} is {w_pt:.0f}x{h_pt:.0f} pt; rendered at {scale * 72:.1f} dpi "
            f"to stay under {max_page_pixels} pixels"
        )
    if min(w_pt, h_pt) * scale < min_side:
        raise MediaTooLarge(
            f"page {i + 1} is {w_pt:.0f}x{h_pt:.0f} pt: too large or too thin to render",
            detail={"page": i + 1, "width_pt": w_pt, "height_pt": h_pt},
        )
    bitmap = pg.render(scale=scale, may_draw_forms=True)  # type: ignore[attr-defined]
    try:
        image = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's buffer is freed now
    finally:
        bitmap.close()
    crop = tuple(pg.get_cropbox())  # type: ignore[attr-defined]
    text_layer = ""
    lines: list[OcrLine] = []
    try:
        tp = pg.get_textpage()  # type: ignore[attr-defined]
        try:
            text_layer = tp.get_text_range().replace("\r\n", "\n").strip()
            lines = _text_lines(tp, crop, scale, rotation)  # type: ignore[arg-type]
        finally:
            tp.close()
    except Exception as exc:  # text extraction is evidence, not a requirement
        log.debug("text layer of page %d unreadable", i + 1, exc_info=True)
        warnings.append(f"page {i + 1}: text layer unreadable ({exc})")
    return PdfPage(index=i, image=image, text_layer=text_layer, text_lines=lines,
                   width_pt=float(w_pt), height_pt=float(h_pt), scale=scale, rotation=rotation)
