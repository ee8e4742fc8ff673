"""Content sniffing: what a file really is, from its first bytes, never its name."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.errors import EmptyMedia, UnsupportedMedia


@dataclass(frozen=True)
class Sniffed:
    kind: str  # image | video | document
    mime: str


def sniff(head: bytes) -> Sniffed:
    """Classify a file from its first (at least 32) bytes. Raises for empty or unknown."""
    if not head:
        raise EmptyMedia("the file is empty")
    h = head
    if h.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg")
    if h.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png")
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "image/gif")
    if h[:4] == b"RIFF" and h[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    if h[:2] == b"BM" and len(h) >= 26:
        return Sniffed("image", "image/bmp")
    if h[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("image", "image/tiff")
    if h[:4] == b"%PDF" or (h.find(b"%PDF-", 0, 1024) != -1):
        return Sniffed("document", "application/pdf")
    if h[4:8] == b"ftyp":
        brand = h[8:12]
        if brand in (b"qt  ",):
            return Sniffed("video", "video/quicktime")
        if brand[:3] in (b"hei", b"mif", b"avi") or brand in (b"heic", b"heix", b"avif"):
            raise UnsupportedMedia("HEIC/AVIF images are not supported yet; convert to JPEG/PNG")
        if brand[:3] == b"M4A":
            raise UnsupportedMedia("audio-only files are not supported")
        return Sniffed("video", "video/mp4")
    if h[:4] == b"\x1a\x45\xdf\xa3":
        mime = "video/webm" if b"webm" in h[:64] else "video/x-matroska"
        return Sniffed("video", mime)
    if h[:4] == b"RIFF" and h[8:12] == b"AVI ":
        return Sniffed("video", "video/x-msvideo")
    raise UnsupportedMedia(
        "not a supported image, video or PDF (checked the file's content, not its name)"
    )
