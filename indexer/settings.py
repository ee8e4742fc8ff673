"""One settings object for every process: API, worker, CLI. Env prefix GLIMPSE_, nested
sections with `__` (GLIMPSE_CATALOG__URL=postgresql+psycopg://...)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelSettings(BaseModel):
    backend: Literal["cpu", "glm", "openai"] = "cpu"
    # openai is generation-only (an OpenAI-compatible server has no embedding endpoint for
    # GLM-4.5V): indexing and query vectors come from this local backend instead
    embed_backend: Literal["cpu", "glm"] = "cpu"
    # glm backend: a local checkpoint directory (never downloaded at run time)
    path: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    # openai backend
    base_url: str | None = None
    api_key: str = "EMPTY"
    served_name: str = "zai-org/GLM-4.5V"
    timeout_s: float = 120.0
    # cpu backend
    ocr: Literal["off", "gated", "on"] = "gated"
    torch_threads: int = 1
    # derived model files (ONNX exports, ConSE class vectors); None: $XDG_CACHE_HOME/glimpse
    # or ~/.cache/glimpse. Rebuilt when missing or stale; safe to share between processes.
    cache_dir: str | None = None
    # threads for per-view OCR/detectors, overlapping the classifier (2 on a 2-core laptop)
    view_workers: int = 2
    batch_size: int = 16


class VectorSettings(BaseModel):
    backend: Literal["faiss", "qdrant"] = "faiss"
    qdrant_url: str | None = None  # None + backend=qdrant: local mode in data_dir
    qdrant_api_key: str | None = None
    hnsw_m: int = 16
    hnsw_ef_construction: int = 100
    hnsw_ef_search: int = 128
    # how often ingest persists the vector index (a FAISS flush rewrites the whole index)
    flush_interval_s: float = 5.0
    # Qdrant server/cluster only: how a new collection is split and replicated
    shard_number: int = 1
    replication_factor: int = 1


class CatalogSettings(BaseModel):
    url: str | None = None  # None: sqlite in data_dir
    pool_size: int = 5
    echo: bool = False


class QueueSettings(BaseModel):
    broker_url: str | None = None  # None: in-process runner
    result_backend: str | None = None
    model_batch_size: int = 16
    model_batch_wait_s: float = 0.2
    visibility_timeout_s: int = 3600
    key_prefix: str = ""  # namespaces every broker key (several deployments on one Redis)
    sweep_interval_s: float = 60.0  # workers re-publish jobs the broker lost (0: off)
    # embedded default (no broker): batches the in-process runner runs at once
    local_lanes: int = 2


class LimitSettings(BaseModel):
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 80_000_000
    max_aspect_ratio: float = 50.0
    min_side: int = 8
    max_video_frames: int = 200
    video_decode_timeout_s: float = 300.0
    max_pdf_pages: int = 200
    # an image media's view (what the model sees, what boxes are given in) is at most this
    # many px on its longer side; the original file is kept and served as uploaded
    image_view_side: int = 1600


class SearchSettings(BaseModel):
    retrieve_k: int = 100
    rrf_k: int = 60
    no_match_threshold: float = 0.2


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GLIMPSE_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Path("./glimpse-data")
    environment: Literal["development", "test", "production"] = "development"
    tenant: str = "default"
    api_token: str | None = None
    model: ModelSettings = Field(default_factory=ModelSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and self.api_token in {"changeme", "secret", ""}:
            raise ValueError("GLIMPSE_API_TOKEN is a placeholder; set a real token in production")
        return self

    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def vector_dir(self) -> Path:
        return self.data_dir / "vectors"

    @property
    def uses_broker(self) -> bool:
        return bool(self.queue.broker_url)
