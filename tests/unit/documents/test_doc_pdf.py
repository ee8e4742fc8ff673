"""PDF rendering: text layer kept with boxes, page bombs, huge pages, encryption, corrupt
bytes. Encrypted files are real RC4-40 (standard security handler R2), built offline."""

from __future__ import annotations

import hashlib
import struct

PAD = bytes.fromhex(
    "28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for ch in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(ch ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _pad(pw: str) -> bytes:
    return (pw.encode("latin-1") + PAD)[:32]


def _assemble(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R ".encode() + trailer_extra
            + f">>\nstartxref\n{xref}\n%%EOF\n".encode())
    return bytes(out)


def encrypted_pdf(user: str = "secret", owner: str = "owner") -> bytes:
    """One empty page, RC4-40 encrypted (no streams or strings to encrypt)."""
    file_id = hashlib.md5(b"glimpse-test").digest()
    p = -44
    o = _rc4(hashlib.md5(_pad(owner)).digest()[:5], _pad(user))
    key = hashlib.md5(_pad(user) + o + struct.pack("<i", p) + file_id).digest()[:5]
    u = _rc4(key, PAD)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 300] >>",
        (b"<< /Filter /Standard /V 1 /R 2 /O <" + o.hex().encode() + b"> /U <"
         + u.hex().encode() + b"> /P " + str(p).encode() + b" >>"),
    ]
    trailer = (b"/Encrypt 4 0 R /ID [<" + file_id.hex().encode() + b"> <"
               + file_id.hex().encode() + b">] ")
    return _assemble(objects, trailer)


def blank_pages_pdf(n: int, width: float = 200, height: float = 300) -> bytes:
    kids = " ".join(f"{3 + i} 0 R" for i in range(n)).encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(n).encode() + b" >>"]
    for _ in range(n):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] >>"
                       .encode())
    return _assemble(objects)


# --- tests ---------------------------------------------------------------------------------

import pytest  # noqa: E402

from indexer.documents.pdf import render_pdf  # noqa: E402
from indexer.documents.synth import paragraph, text_pdf  # noqa: E402
from indexer.errors import CorruptMedia, EmptyMedia, MediaTooLarge, UnsupportedMedia  # noqa: E402

PAGES = [paragraph(i, n_lines=6, words_per_line=5).split("\n") for i in range(3)]


@pytest.fixture(scope="module")
def text_pdf_bytes() -> bytes:
    return text_pdf(PAGES)


def test_multi_page_pdf_keeps_text_layer_with_boxes(text_pdf_bytes: bytes) -> None:
    res = render_pdf(text_pdf_bytes, max_pages=10, dpi=100)
    assert res.page_count == 3 and len(res.pages) == 3 and res.warnings == []
    for page, lines in zip(res.pages, PAGES, strict=True):
        assert page.image.size == (850, 1100)  # 8.5x11 in at 100 dpi
        assert (page.width_pt, page.height_pt) == (612.0, 792.0)
        assert [ln.text for ln in page.text_lines] == lines
        assert page.text_layer.split("\n") == lines
        ys = [ln.box.y0 for ln in page.text_lines]
        assert ys == sorted(ys)
        for ln in page.text_lines:  # fig.text at x=0.1 of the width, first line at y=0.92
            assert abs(ln.box.x0 - 85) < 6
            assert 0 < ln.box.x1 < 850 and 0 < ln.box.y1 < 1100
        top = page.text_lines[0].box
        assert abs(top.y1 - 0.08 * 1100) < 12
        # the box really covers ink on the rendered image
        import numpy as np

        crop = np.asarray(page.image.convert("L").crop(
            (int(top.x0), int(top.y0), int(top.x1), int(top.y1))))
        assert (crop < 128).mean() > 0.05


def test_page_bomb_renders_first_pages_with_warning() -> None:
    res = render_pdf(blank_pages_pdf(400), max_pages=5, dpi=36)
    assert res.page_count == 400 and len(res.pages) == 5
    assert any("400 pages" in w for w in res.warnings)


def test_huge_page_is_scaled_down_not_rendered_at_full_size() -> None:
    res = render_pdf(blank_pages_pdf(1, 14400, 14400), max_pages=1, dpi=150,
                     max_page_pixels=4_000_000)
    img = res.pages[0].image
    assert img.width * img.height <= 4_000_000 and img.width >= 1900
    assert any("pixels" in w for w in res.warnings)


def test_absurdly_thin_page_is_too_large() -> None:
    with pytest.raises(MediaTooLarge):
        render_pdf(blank_pages_pdf(1, 14400, 1), max_pages=1, dpi=150, max_page_pixels=1_000_000)


def test_password_protected_pdf_is_unsupported_but_opens_with_password() -> None:
    data = encrypted_pdf(user="secret")
    with pytest.raises(UnsupportedMedia) as exc:
        render_pdf(data, max_pages=1)
    assert "password-protected" in exc.value.message
    assert len(render_pdf(data, max_pages=1, password="secret", dpi=36).pages) == 1


@pytest.mark.parametrize("data", [b"%PDF-1.7\n" + bytes(range(256)) * 8,
                                  b"GIF89a not a pdf at all",
                                  b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF"])
def test_corrupt_bytes_raise_corrupt_media(data: bytes) -> None:
    with pytest.raises(CorruptMedia):
        render_pdf(data, max_pages=3)


def test_truncated_pdf_never_hangs(text_pdf_bytes: bytes) -> None:
    cut = text_pdf_bytes[: len(text_pdf_bytes) // 3]
    try:
        res = render_pdf(cut, max_pages=3, dpi=36)
    except CorruptMedia:
        return
    assert len(res.pages) >= 1  # pdfium may repair it; then pages must be real


def test_empty_input() -> None:
    with pytest.raises(EmptyMedia):
        render_pdf(b"", max_pages=1)


def test_path_input(tmp_path: object, text_pdf_bytes: bytes) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "doc.pdf"
    p.write_bytes(text_pdf_bytes)
    res = render_pdf(p, max_pages=1, dpi=50)
    assert len(res.pages) == 1 and res.page_count == 3
    assert any("only the first 1" in w for w in res.warnings)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_page_text_boxes_land_on_ink(text_pdf_bytes: bytes, rotation: int) -> None:
    import io

    import numpy as np
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(text_pdf_bytes)
    doc[0].set_rotation(rotation)
    buf = io.BytesIO()
    doc.save(buf)
    page = render_pdf(buf.getvalue(), max_pages=1, dpi=72).pages[0]
    assert page.rotation == rotation
    assert page.image.size == ((792, 612) if rotation in (90, 270) else (612, 792))
    gray = np.asarray(page.image.convert("L"))
    for ln in page.text_lines:
        b = ln.box
        crop = gray[int(b.y0):int(b.y1) + 1, int(b.x0):int(b.x1) + 1]
        assert crop.size and (crop < 128).mean() > 0.1, (rotation, ln.text, b)
        # sideways pages have tall line boxes
        tall = (b.y1 - b.y0) > (b.x1 - b.x0)
        assert tall == (rotation in (90, 270))
