"""One settings object for every process: API, worker, CLI. Env prefix GLIMPSE_, nested
sections with `__` (GLIMPSE_CATALOG__URL=postgresql+psycopg://...)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from indexer.paths import default_data_dir


class ModelSettings(BaseModel):
    backend: Literal["cpu", "glm", "openai"] = "cpu"
    # openai is generation-only (an OpenAI-compatible server has no embedding endpoint for
    # GLM-4.5V): indexing and query vectors come from this local backend instead.
    # clip: vectors and tags from a CLIP-family checkpoint (clip_model) beside any backend,
    # which still describes views (OCR, people, colours; glm: captions) and answers
    embed_backend: Literal["cpu", "glm", "clip"] = "cpu"
    # clip: a hub id (downloaded once where the hub is reachable) or a local checkpoint folder
    clip_model: str | None = None
    clip_revision: str | None = None  # a hub branch, tag or commit; None: main
    # clip on CPU: the towers through onnxruntime (exported once, checked against torch) or
    # plain torch; auto = onnx where a tower exports (see the bench `embed` section)
    clip_runtime: Literal["auto", "torch", "onnx"] = "auto"
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
    # COCO object detector (CenterNet from the npm package @vladmandic/human, converted to
    # ONNX once into cache_dir; see indexer/models/cpu/objects.py). off: no COCO objects
    objects: Literal["off", "on"] = "on"
    objects_side: int = 416  # detector input side (multiple of 32)
    objects_min_score: float = 0.3
    # follow-up counts and relations look at the asked-about views again at this detector
    # input side (more pixels for small objects; ~3x one index pass per view asked about);
    # 0 or <= objects_side: answer from the stored boxes only
    objects_closer_side: int = 640


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
    # a PDF page is rendered at most this many pixels, and all pages of one document share
    # a budget (long documents render smaller): decode memory stays bounded (README Security)
    max_pdf_page_pixels: int = 4_000_000
    max_pdf_total_pixels: int = 48_000_000
    # a whole request body (an upload of many files), a JSON body, one text form field, and
    # files per upload request: refused on Content-Length at once, counted while streaming
    max_request_bytes: int = 1024 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    max_field_bytes: int = 64 * 1024
    max_files_per_request: int = 200
    # an image media's view (what the model sees, what boxes are given in) is at most this
    # many px on its longer side; the original file is kept and served as uploaded
    image_view_side: int = 1600


class AuthSettings(BaseModel):
    # signed URLs for <img>/<video>/download links: how long one stays valid
    signed_url_ttl_s: int = 3600
    # how long a validated key is trusted from memory before the catalog is asked again
    # (a revocation through another process or replica takes effect within this)
    key_cache_s: float = 5.0


class SessionSettings(BaseModel):
    idle_expiry_s: float = 24 * 3600.0  # a session unused this long is gone (404)
    max_per_tenant: int = 1000  # live sessions per tenant; the least recently used go first
    history_turns: int = 8  # earlier turns a follow-up reads (the model's history window)


class GenerationSettings(BaseModel):
    """Text-to-image generation (/v1/generations, `glimpse generate`)."""

    # cpu: retrieval-grounded composition from the index; diffusion: a diffusers Stable
    # Diffusion pipeline (GPU); openai: an OpenAI-compatible images API
    backend: Literal["cpu", "diffusion", "openai"] = "cpu"
    max_n: int = 4  # images per request
    max_side: int = 1024  # px, each side
    max_attempts: int = 4  # cpu: compose-and-verify attempts per image
    blend: Literal["alpha", "seamless"] = "alpha"  # cpu: alpha compositing or cv2.seamlessClone
    # diffusion: a local diffusers pipeline folder (never downloaded at run time)
    diffusion_path: str | None = None
    diffusion_device: str = "auto"  # auto: cuda when available, else cpu
    diffusion_steps: int = 30  # denoising steps per image
    # openai: base URL of the images API (".../v1"), its key and model name
    images_base_url: str | None = None
    images_api_key: str = "EMPTY"  # sent as the Bearer key
    images_model: str = "gpt-image-1"  # the `model` of the request
    images_timeout_s: float = 120.0  # per request


class SearchSettings(BaseModel):
    retrieve_k: int = 100
    rrf_k: int = 60
    # "no good match" when the best result's calibrated relevance is under this; chosen on
    # the tuxpaint tuning half (glimpse bench --only quality, README "Search quality")
    no_match_threshold: float = 0.37
    no_match_threshold_image: float = 0.48  # the same for search by example image


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GLIMPSE_", env_nested_delimiter="__", extra="ignore"
    )

    # GLIMPSE_DATA_DIR; default $XDG_DATA_HOME/glimpse or ~/.local/share/glimpse
    data_dir: Path = Field(default_factory=default_data_dir)
    environment: Literal["development", "test", "production"] = "development"
    tenant: str = "default"
    # an admin API key from the deployment's secret (GLIMPSE_ADMIN_KEY): on start the
    # catalog holds it as an admin key of `tenant` (replaces the old shared api_token)
    admin_key: str | None = None
    model: ModelSettings = Field(default_factory=ModelSettings)
    vectors: VectorSettings = Field(default_factory=VectorSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        key = self.admin_key
        if key is not None and (len(key) < 32 or "change" in key.lower()
                                or "replace" in key.lower()):
            raise ValueError("GLIMPSE_ADMIN_KEY is a placeholder or shorter than 32 "
                             "characters; use e.g. `openssl rand -hex 32`")
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
