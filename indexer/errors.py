"""Typed domain errors. The HTTP edge maps each class to one status code, once."""

from __future__ import annotations


class GlimpseError(Exception):
    """Base of every error Glimpse raises on purpose. `status` is the HTTP mapping."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class InvalidRequest(GlimpseError):
    status = 400
    code = "invalid_request"


class EmptyMedia(GlimpseError):
    status = 400
    code = "empty_media"


class NotFound(GlimpseError):
    status = 404
    code = "not_found"


class MediaTooLarge(GlimpseError):
    status = 413
    code = "too_large"


class UnsupportedMedia(GlimpseError):
    status = 415
    code = "unsupported_media"


class CorruptMedia(GlimpseError):
    status = 422
    code = "corrupt_media"


class ModelUnavailable(GlimpseError):
    status = 503
    code = "model_unavailable"


class StoreUnavailable(GlimpseError):
    status = 503
    code = "store_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class VectorSpaceMismatch(GlimpseError):
    """A collection built by one model was asked to hold or answer vectors of another."""

    status = 409
    code = "vector_space_mismatch"
