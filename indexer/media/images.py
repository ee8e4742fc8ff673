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
                # JPEG: decode at 1/8 scale. Every entropy-coded byte is still read, so a
                # truncated or corrupt stream still fails here, without paying for the IDCT
                # of 12 MP in the request thread
                img.draft("RGB", (max(1, info.width // 8), max(1, info.height // 8)))
                img.load()
    except (MediaTooLarge, UnsupportedMedia, CorruptMedia):
        raise
    except UnidentifiedImageError as e:
        raise UnsupportedMedia("the image format could not be identified") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise CorruptMedia(f"image is truncated or corrupt: {e}") from e
    return info


def load_rgb(path: Path | str, limits: LimitSettings | None = None, *,
             max_side: int | None = None) -> Image.Image:
    """Decode to RGB with EXIF orientation applied (what a person sees). With max_side, the
    longer side is at most that: a JPEG is decoded at a reduced DCT scale (1/2, 1/4, 1/8) when
    it is at least twice as large, which is several times cheaper than a full decode, and then
    resized. The result depends only on the file and max_side."""
    try:
        with Image.open(path) as src:
            if limits is not None:
                check_header(src, limits)
            w, h = src.size
            if max_side is not None and max(w, h) > max_side:
                s = max_side / max(w, h)
                src.draft("RGB", (max(1, round(w * s)), max(1, round(h * s))))
            img: Image.Image = ImageOps.exif_transpose(src)
            if max_side is not None and max(img.size) > max_side:
                img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR,
                              reducing_gap=2.0)
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


def load_view_rgb(path: Path | str, limits: LimitSettings) -> Image.Image:
    """The pixels of an image media's view: at most `limits.image_view_side` px on the longer
    side. Every place that needs a photo's view (indexing, search by example, answers, thumbnails)
    loads it through here, so boxes found at indexing time match the view's width/height."""
    return load_rgb(path, limits, max_side=limits.image_view_side)


def thumbnail_jpeg(img: Image.Image, max_side: int = 320, quality: int = 82) -> bytes:
    im = img.copy()
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
