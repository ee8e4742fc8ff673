"""Stage 1: turn a stored media file into views (image | video keyframes | document pages)."""

from __future__ import annotations

from pathlib import Path

from indexer.domain import ViewInput
from indexer.errors import UnsupportedMedia
from indexer.media.images import load_view_rgb
from indexer.pipeline.decoded import Decoded, DecodedView
from indexer.settings import Settings

__all__ = ["Decoded", "DecodedView", "decode_media", "original_size"]


def original_size(path: Path) -> tuple[int, int]:
    """The uploaded image's size as a person sees it (EXIF rotation applied), from the header."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        try:
            turned = im.getexif().get(0x0112) in (5, 6, 7, 8)
        except Exception:  # noqa: BLE001 - unreadable EXIF: no rotation
            turned = False
    return (h, w) if turned else (w, h)


def decode_media(media_id: str, kind: str, path: Path, settings: Settings) -> Decoded:
    if kind == "image":
        img = load_view_rgb(path, settings.limits)
        v = ViewInput(view_id=f"{media_id}:0", image=img, kind="image")
        w, h = original_size(path)
        return Decoded([DecodedView(v, 0, store_image=False)], width=w, height=h)
    if kind == "video":
        from indexer.pipeline.decode_video import decode_video

        return decode_video(media_id, path, settings)
    if kind == "document":
        from indexer.pipeline.decode_document import decode_document

        return decode_document(media_id, path, settings)
    raise UnsupportedMedia(f"cannot index media of kind {kind!r}")
