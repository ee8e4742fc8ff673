from __future__ import annotations

import io

import pytest
from PIL import Image

from indexer.errors import CorruptMedia, EmptyMedia, MediaTooLarge, UnsupportedMedia
from indexer.media.images import validate_image
from indexer.media.sniff import sniff
from indexer.settings import LimitSettings


def _png(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (20, 30, 200)).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize(("data", "kind", "mime"), [
    (_png(), "image", "image/png"),
    (_jpeg(), "image", "image/jpeg"),
    (b"%PDF-1.7\n%...", "document", "application/pdf"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00", "video", "video/mp4"),
    (b"\x1a\x45\xdf\xa3\x01\x00\x00\x00\x00\x00\x00\x1fB\x86\x81\x01webm", "video", "video/webm"),
])
def test_sniff_by_content(data: bytes, kind: str, mime: str) -> None:
    s = sniff(data)
    assert (s.kind, s.mime) == (kind, mime)


def test_sniff_rejects_text_and_empty() -> None:
    with pytest.raises(UnsupportedMedia):
        sniff(b"hello, this is a text file pretending to be a .jpg")
    with pytest.raises(EmptyMedia):
        sniff(b"")


def test_validate_good_image() -> None:
    info = validate_image(_png(120, 80), LimitSettings())
    assert (info.width, info.height) == (120, 80)


def test_truncated_image_is_422() -> None:
    data = _jpeg(400, 300)
    with pytest.raises(CorruptMedia):
        validate_image(data[: len(data) // 2], LimitSettings())


def test_bomb_refused_before_decoding() -> None:
    # a tiny PNG whose header claims 30000 x 30000 pixels (900 MP)
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, format="PNG")
    data = buf.getvalue()
    assert len(data) < 2_000_000
    with pytest.raises(MediaTooLarge, match="pixel"):
        validate_image(data, LimitSettings(max_image_pixels=50_000_000))


def test_absurd_aspect_ratio_and_tiny_side() -> None:
    with pytest.raises(UnsupportedMedia, match="aspect"):
        validate_image(_png(4000, 20), LimitSettings())
    with pytest.raises(UnsupportedMedia, match="side"):
        validate_image(_png(4, 4), LimitSettings())
