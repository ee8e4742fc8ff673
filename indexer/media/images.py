"""Image validation and decoding, safe against bombs, truncation and absurd shapes."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from indexer.settings import LimitSettings

# We enforce our own pixel limit before decoding; PIL's warning-then-error is turned off.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def check_header(img: Image.Image, limits: LimitSettings) -> ImageInfo:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise CorruptMedia("image has no pixels")
    if w * h > limits.max_image_pixels:
        raise MediaTooLarge(
            f"image is {w}x{h} = {w * h} pixels, over the {limits.max_image_pixels} pixel "
            "limit (refused before decoding)"
        )
    if min(w, h) < limits.min_side:
        raise UnsupportedMedia(f"image is {w}x{h}; each side must be ≥ {limits.min_side} px")
    if max(w, h) / min(w, h) > limits.max_aspect_ratio:
        raise UnsupportedMedia(
            f"image is {w}x{h}: aspect ratio over {limits.max_aspect_ratio}:1 is not supported"
        )
    return ImageInfo(w, h, img.format or "")


def validate_image(path: Path | str | bytes, limits: LimitSettings) -> ImageInfo:
    """Header checks first (cheap, before decoding), then a full decode to catch truncation."""
    src = io.BytesIO(path) if isinstance(path, bytes) else path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(src) as img:
                info = check_header(img, limits)
                img.load()
    except (MediaTooLarge, UnsupportedMedia, CorruptMedia):
        raise
    except UnidentifiedImageError as e:
        raise UnsupportedMedia("the image format could not be identified") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise CorruptMedia(f"image is truncated or corrupt: {e}") from e
    return info


def load_rgb(path: Path | str, limits: LimitSettings | None = None) -> Image.Image:
    """Decode to RGB with EXIF orientation applied (what a person sees)."""
    try:
        with Image.open(path) as src:
            if limits is not None:
                check_header(src, limits)
            img: Image.Image = ImageOps.exif_transpose(src)
            if img.mode in ("RGBA", "LA", "P"):
                img = img.convert("RGBA")
                bg = Image.new("RGB", img.size, (255, 255, 255))
                bg.paste(img, mask=img.split()[-1])
                return bg
            return img.convert("RGB")
    except (MediaTooLarge, UnsupportedMedia, CorruptMedia):
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptMedia(f"image could not be decoded: {e}") from e


def thumbnail_jpeg(img: Image.Image, max_side: int = 320, quality: int = 82) -> bytes:
    im = img.copy()
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
