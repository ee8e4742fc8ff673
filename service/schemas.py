"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field


def as_utc(t: datetime) -> datetime:
    """A time without a zone is UTC (SQLite hands them back naive; the web page's date
    inputs send them naive); every time the API returns carries its zone."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class ErrorBody(BaseModel):
    code: str
    message: str
    detail: dict[str, Any] = Field(default_factory=dict)


class UploadItem(BaseModel):
    filename: str | None
    media_id: str | None = None
    job_id: str | None = None
    status: str
    duplicate: bool = False
    kind: str | None = None
    error: ErrorBody | None = None


class UploadResponse(BaseModel):
    items: list[UploadItem]


class JobOut(BaseModel):
    job_id: str
    kind: Literal["ingest", "generation"] = "ingest"
    media_id: str | None  # a generation's: its first image, once done
    generation_id: str | None = None
    status: Literal["queued", "running", "done", "failed"]
    progress: float
    stage: str | None
    error: str | None
    warnings: list[Any]
    attempts: int
    timings_ms: dict[str, Any]
    created_at: UtcDatetime
    finished_at: UtcDatetime | None


class BoxOut(BaseModel):
    label: str
    score: float
    box: list[float]


class ViewOut(BaseModel):
    view_id: str
    idx: int
    kind: str
    t_start: float | None
    t_end: float | None
    page: int | None
    width: int | None
    height: int | None
    caption: str
    tags: list[dict[str, Any]]
    ocr: list[dict[str, Any]]
    objects: list[dict[str, Any]]
    colors: dict[str, Any]
    thumbnail_url: str


class MediaOut(BaseModel):
    media_id: str
    kind: str
    mime: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    duration_s: float | None
    filename: str | None
    origin: str = Field(default="upload", description="upload | generated (made by "
                        "/v1/generations)")
    status: str
    error: str | None
    warnings: list[Any]
    created_at: UtcDatetime
    thumbnail_url: str
    file_url: str
    views: list[ViewOut] = Field(default_factory=list)


MediaId = Annotated[str, Field(min_length=1, max_length=64)]


class SearchFiltersIn(BaseModel):
    kind: list[Literal["image", "video", "document", "photo", "chart"]] | None = Field(
        default=None, max_length=5)
    date_from: UtcDatetime | None = None
    date_to: UtcDatetime | None = None
    media_ids: list[MediaId] | None = Field(default=None, max_length=1000)
    generated: bool | None = Field(default=None, description=(
        "false: leave out images made by /v1/generations; true: only those"))


class SearchIn(BaseModel):
    text: str | None = Field(default=None, max_length=1000)
    media_id: MediaId | None = None
    k: int = Field(default=10, ge=1, le=200)
    filters: SearchFiltersIn = Field(default_factory=SearchFiltersIn)
    rerank: bool = True
    rerank_n: int = Field(default=20, ge=1, le=200)
    explain: bool = False
    explain_m: int = Field(default=5, ge=1, le=50)


class SearchOut(BaseModel):
    session_id: str
    results: list[dict[str, Any]]
    stages: list[str]
    no_good_match: bool
    message: str | None
    timings_ms: dict[str, float]
    lists: dict[str, int]


class QuestionIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    stream: bool = False


class AnswerOut(BaseModel):
    answer: str
    steps: list[dict[str, Any]]
    boxes: list[dict[str, Any]]
    refs: list[str]
    result_indices: list[int]
    checked_indices: list[int] = Field(default_factory=list)
    resolved_as: str
    latency_ms: float
    debug: dict[str, Any] = Field(default_factory=dict)
