"""GLM-4.5V (and any Glm4v / Glm4vMoe checkpoint) through transformers, in-process.

One vector space: `semantic`, the model's own last-layer hidden state of the last prompt token
under an E5-V-style prompt (Jiang et al. 2024, "E5-V: Universal Embeddings with Multimodal Large
Language Models"): an image is asked "Summarize the above image in one word:", a text "Summarize
the above sentence in one word:", so both land where the model would put its one-word summary.
Text->image and image->image search both use it; there is no separate visual space.

Generation (describe / answer / score / extract / answer_video) uses the checkpoint's chat
template; thinking is toggled with the template's `enable_thinking`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from indexer.domain import Answer, Description, Turn, ViewEncoding, ViewInput
from indexer.errors import InvalidRequest, ModelUnavailable
from indexer.models.base import l2_normalize
from indexer.models.glm.answers import assemble_answer, question_text
from indexer.models.glm.boxes import strip_box_tokens
from indexer.models.glm.cache import CachedImageFeatures, VisionFeatureCache
from indexer.models.glm.inputs import (
    GlmInputs,
    load_chat_template,
    load_video_size,
)
from indexer.models.glm.jsonparse import parse_json_output
from indexer.models.glm.prompts import (
    DESCRIBE_PROMPT,
    EMBED_PROMPT_VERSION,
    EXTRACT_PROMPTS,
    IMAGE_EMBED_PROMPT,
    SCORE_PROMPT,
    TEXT_EMBED_PROMPT,
    VIDEO_SYSTEM_HINT,
    extract_kind,
)
from indexer.models.glm.routing import RoutingRecorder
from indexer.models.glm.text import split_thinking
from indexer.settings import ModelSettings

log = logging.getLogger(__name__)


def _resolve_device(setting: str) -> torch.device:
    if setting and setting != "auto":
        return torch.device(setting)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[setting]


def checkpoint_fingerprint(path: Path, config_dict: dict[str, Any]) -> str:
    """Hash of the config (minus where it was loaded from) and of each weight file's size and
    first/last MiB: two checkpoints with one config but other weights get other ids, without
    reading 200 GB."""
    cfg = {
        k: v
        for k, v in config_dict.items()
        if k
        not in {"_name_or_path", "name_or_path", "transformers_version", "dtype", "torch_dtype"}
    }
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode())
    for f in sorted(path.glob("*.safetensors")):
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with f.open("rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(size - (1 << 20))
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:12]


class GlmModel:
    """The `glm` backend. Thread-safe: one lock serialises model calls."""

    generative = True

    def __init__(
        self,
        settings: ModelSettings,
        *,
        max_new_tokens: int = 1024,
        caption_max_new_tokens: int = 64,
        thinking: bool = True,
        describe_on_index: bool = True,
        vision_cache_entries: int = 256,
        vision_cache_bytes: int = 2 << 30,
        routing_trace: bool = True,
    ) -> None:
        self.settings = settings
        self.max_new_tokens = max_new_tokens
        self.caption_max_new_tokens = caption_max_new_tokens
        self.thinking_default = thinking
        self.describe_on_index = describe_on_index
        self.routing_trace = routing_trace
        self.vision_cache = VisionFeatureCache(vision_cache_entries, vision_cache_bytes)
        self.model_id = "glm:unloaded"
        self.spaces: dict[str, int] = {}
        self._lock = threading.RLock()
        self._loaded = False
        self._model: Any = None
        self._inputs: GlmInputs | None = None
        self._image_hook: CachedImageFeatures | None = None
        self._routing: RoutingRecorder | None = None
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.load_seconds = 0.0
        if settings.path:
            # model_id and spaces are known without weights: read the config only
            with contextlib.suppress(Exception):
                self._read_identity(Path(settings.path))

    # ------------------------------------------------------------------ loading
    def _read_identity(self, path: Path) -> Any:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = int(text.hidden_size)
        arch = (getattr(config, "architectures", None) or [config.model_type])[0]
        fp = checkpoint_fingerprint(path, config.to_dict())
        self.model_id = f"glm:{arch}:h{hidden}:{fp}:{EMBED_PROMPT_VERSION}"
        self.spaces = {"semantic": hidden}
        return config

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            t0 = time.perf_counter()
            os.environ["HF_HUB_OFFLINE"] = "1"
            torch.set_num_threads(max(1, int(self.settings.torch_threads)))
            if not self.settings.path:
                raise ModelUnavailable(
                    "the glm backend needs GLIMPSE_MODEL__PATH: a local Glm4v/Glm4vMoe checkpoint"
                )
            path = Path(self.settings.path)
            if not (path / "config.json").is_file():
                raise ModelUnavailable(f"no checkpoint at {path} (config.json missing)")
            try:
                from transformers import (
                    AutoImageProcessor,
                    AutoModelForImageTextToText,
                    AutoProcessor,
                    AutoTokenizer,
                )

                config = self._read_identity(path)
                processor: Any = None
                try:
                    processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
                    tokenizer = processor.tokenizer
                    image_processor = processor.image_processor
                except (ImportError, ValueError, TypeError, OSError) as e:
                    # Glm4vProcessor needs Glm4vVideoProcessor, which needs torchvision.
                    log.info("AutoProcessor unavailable (%s); loading its parts", str(e)[:120])
                    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                    image_processor = AutoImageProcessor.from_pretrained(
                        str(path), local_files_only=True
                    )
                tokenizer.padding_side = "left"
                if tokenizer.pad_token_id is None:
                    tokenizer.pad_token = tokenizer.eos_token
                self.device = _resolve_device(self.settings.device)
                self.dtype = _resolve_dtype(self.settings.dtype, self.device)
                model = AutoModelForImageTextToText.from_pretrained(
                    str(path), dtype=self.dtype, local_files_only=True
                )
                model = model.to(self.device)  # type: ignore[arg-type]
                model.eval()
            except ModelUnavailable:
                raise
            except Exception as e:  # a broken checkpoint is an unavailable model
                raise ModelUnavailable(f"could not load GLM checkpoint {path}: {e}") from e
            self._model = model
            self._inputs = GlmInputs(
                tokenizer,
                image_processor,
                load_chat_template(path, tokenizer, processor),
                config,
                load_video_size(path),
            )
            base = model.model
            sync = torch.cuda.synchronize if self.device.type == "cuda" else None
            self._image_hook = CachedImageFeatures(
                base.get_image_features,
                self.vision_cache,
                self.model_id,
                int(config.vision_config.spatial_merge_size),
                sync=sync,
            )
            base.get_image_features = self._image_hook  # instance attribute shadows the method
            self._routing = RoutingRecorder(model, trace=self.routing_trace)
            self._yes_ids, self._no_ids = self._answer_token_ids()
            self._eos_ids = self._eos_token_ids()
            self._loaded = True
            self.load_seconds = time.perf_counter() - t0
            log.info(
                "loaded %s on %s/%s in %.1fs (%d MoE layers)",
                self.model_id,
                self.device,
                self.dtype,
                self.load_seconds,
                len(self._routing.moe_layers),
            )

    def _answer_token_ids(self) -> tuple[list[int], list[int]]:
        assert self._inputs is not None

        def first_ids(words: list[str]) -> list[int]:
            out: list[int] = []
            for w in words:
                ids = self._inputs.token_ids(w) if self._inputs else []
                if ids and ids[0] not in out:
                    out.append(ids[0])
            return out

        yes = first_ids(["yes", "Yes", " yes", " Yes"])
        no = first_ids(["no", "No", " no", " No"])
        overlap = set(yes) & set(no)
        return [i for i in yes if i not in overlap], [i for i in no if i not in overlap]

    def _eos_token_ids(self) -> list[int]:
        gc = getattr(self._model, "generation_config", None)
        eos = getattr(gc, "eos_token_id", None)
        if eos is None:
            eos = self._model.config.get_text_config().eos_token_id
        if eos is None:
            return []
        return list(eos) if isinstance(eos, list | tuple) else [int(eos)]

    # ------------------------------------------------------------------ plumbing
    @property
    def inputs(self) -> GlmInputs:
        self.load()
        assert self._inputs is not None
        return self._inputs

    @property
    def routing(self) -> RoutingRecorder:
        self.load()
        assert self._routing is not None
        return self._routing

    @contextlib.contextmanager
    def _call(self, view_ids: list[str | None] | None) -> Iterator[dict[str, Any]]:
        """One model call: lock, vision-cache ids, routing window, timings."""
        self.load()
        assert self._image_hook is not None and self._routing is not None
        info: dict[str, Any] = {}
        with self._lock, torch.inference_mode():
            self._image_hook.expect(view_ids)
            self._routing.start()
            t0 = time.perf_counter()
            try:
                yield info
            finally:
                info["seconds"] = round(time.perf_counter() - t0, 4)
                info["routing"] = self._routing.finish()
                info["vision_cache"] = {
                    "hits": self._image_hook.call_hits,
                    "misses": self._image_hook.call_misses,
                    "tower_seconds": round(self._image_hook.call_tower_seconds, 4),
                }
                self._image_hook.expect(None)

    def _to_device(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in tensors.items():
            if k in {"pixel_values", "pixel_values_videos"}:
                out[k] = v.to(self.device, self.dtype)
            else:
                out[k] = v.to(self.device)
        return out

    @staticmethod
    def _user(images: int, text: str, video: bool = False) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in range(images)]
        if video:
            content.append({"type": "video"})
        content.append({"type": "text", "text": text})
        return {"role": "user", "content": content}

    # ------------------------------------------------------------------ embeddings
    def _last_token_states(
        self, prompts: list[str], images: list[list[Image.Image]], view_ids: list[str | None]
    ) -> np.ndarray:
        built = self.inputs.build(prompts, images)
        with self._call(view_ids):
            tensors = self._to_device(built.tensors)
            out = self._model.model(**tensors, use_cache=False)
            # left padding: the last position is every row's last real token
            last = out.last_hidden_state[:, -1, :].float().cpu().numpy()
        return l2_normalize(last)

    def _embed_images(self, views: Sequence[ViewInput]) -> np.ndarray:
        if not views:
            return np.zeros((0, self.spaces.get("semantic", 0)), np.float32)
        prompt = self.inputs.render([self._user(1, IMAGE_EMBED_PROMPT)], thinking=False)
        out = []
        bs = max(1, int(self.settings.batch_size))
        for i in range(0, len(views), bs):
            chunk = list(views[i : i + bs])
            out.append(
                self._last_token_states(
                    [prompt] * len(chunk), [[v.image] for v in chunk], [v.view_id for v in chunk]
                )
            )
        return np.concatenate(out, axis=0)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.spaces["semantic"]), np.float32)
        prompts = [
            self.inputs.render(
                [{"role": "user", "content": f"{t}\n{TEXT_EMBED_PROMPT}"}], thinking=False
            )
            for t in texts
        ]
        out = []
        bs = max(1, int(self.settings.batch_size))
        for i in range(0, len(prompts), bs):
            chunk = prompts[i : i + bs]
            out.append(self._last_token_states(chunk, [[] for _ in chunk], []))
        return np.concatenate(out, axis=0)

    def embed_query_images(self, views: Sequence[ViewInput]) -> list[dict[str, np.ndarray]]:
        self.load()
        return [{"semantic": v} for v in self._embed_images(views)]

    def encode_views(self, views: Sequence[ViewInput]) -> list[ViewEncoding]:
        self.load()
        vectors = self._embed_images(views)  # fills the vision cache ...
        if self.describe_on_index:
            descriptions = self._describe_many(views)  # ... so captions reuse the features
        else:
            descriptions = [Description(caption="", extra={"model": self.model_id}) for _ in views]
        return [
            ViewEncoding(description=d, vectors={"semantic": v})
            for d, v in zip(descriptions, vectors, strict=True)
        ]

    # ------------------------------------------------------------------ generation
    def _generate(
        self,
        prompts: list[str],
        images: list[list[Image.Image]],
        view_ids: list[str | None],
        max_new_tokens: int,
        videos: list[list[list[tuple[float, Image.Image]]]] | None = None,
    ) -> tuple[list[str], list[bool], dict[str, Any]]:
        built = self.inputs.build(prompts, images, videos)
        tok = self.inputs.tokenizer
        with self._call(view_ids) as info:
            tensors = self._to_device(built.tensors)
            prompt_len = tensors["input_ids"].shape[1]
            gen = self._model.generate(
                **tensors,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self._eos_ids or None,
                pad_token_id=tok.pad_token_id,
            )
            new = gen[:, prompt_len:].cpu()
        texts = []
        eos = set(self._eos_ids)
        for row in new.tolist():
            while row and (row[-1] in eos or row[-1] == tok.pad_token_id):
                row.pop()
            texts.append(tok.decode(row, skip_special_tokens=False))
        info["prompt_tokens"] = int(prompt_len)
        info["generated_tokens"] = [len(r) for r in new.tolist()]
        info["videos"] = built.video_info
        return texts, built.opened_think, info

    def _describe_many(self, views: Sequence[ViewInput]) -> list[Description]:
        prompt = self.inputs.render([self._user(1, DESCRIBE_PROMPT)], thinking=False)
        out: list[Description] = []
        bs = max(1, int(self.settings.batch_size))
        for i in range(0, len(views), bs):
            chunk = list(views[i : i + bs])
            texts, opened, _ = self._generate(
                [prompt] * len(chunk),
                [[v.image] for v in chunk],
                [v.view_id for v in chunk],
                self.caption_max_new_tokens,
            )
            for raw, op in zip(texts, opened, strict=True):
                split = split_thinking(raw, opened=op)
                caption = strip_box_tokens(split.answer).strip()
                out.append(Description(caption=caption, extra={"model": self.model_id}))
        return out

    def describe(self, view: ViewInput) -> Description:
        return self._describe_many([view])[0]

    def score(self, query: str, view: ViewInput, description: Description | None) -> float:
        self.load()
        text = SCORE_PROMPT.format(query=query.strip().rstrip("?"))
        if description is not None and description.caption:
            text = f"Image description: {description.caption}\n{text}"
        prompt = self.inputs.render([self._user(1, text)], thinking=False)
        built = self.inputs.build([prompt], [[view.image]])
        with self._call([view.view_id]):
            out = self._model(**self._to_device(built.tensors), use_cache=False, logits_to_keep=1)
            logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            p_yes = float(logp[self._yes_ids].exp().sum()) if self._yes_ids else 0.0
            p_no = float(logp[self._no_ids].exp().sum()) if self._no_ids else 0.0
        if p_yes + p_no <= 0:
            return 0.5
        return p_yes / (p_yes + p_no)

    def _history(self, history: Sequence[Turn]) -> list[dict[str, Any]]:
        return [{"role": t.role, "content": t.text} for t in history]

    def _answer_from(
        self,
        raw: str,
        opened: bool,
        views: Sequence[ViewInput],
        thinking: bool,
        info: dict[str, Any],
    ) -> Answer:
        split = split_thinking(raw, opened=opened)
        debug: dict[str, Any] = {
            "backend": "glm",
            "model_id": self.model_id,
            "thinking": thinking,
            "truncated": split.truncated,
            "raw": raw,
            "routing": info.get("routing", {}),
            "vision_cache": info.get("vision_cache", {}),
            "seconds": info.get("seconds"),
            "prompt_tokens": info.get("prompt_tokens"),
            "generated_tokens": (info.get("generated_tokens") or [0])[0],
        }
        if info.get("videos"):
            debug["video"] = info["videos"]
        return assemble_answer(split.answer, split.thinking, views, thinking=thinking, debug=debug)

    def answer(
        self,
        question: str,
        views: Sequence[ViewInput],
        descriptions: Sequence[Description],
        history: Sequence[Turn] = (),
        *,
        thinking: bool | None = None,
        max_new_tokens: int | None = None,
    ) -> Answer:
        self.load()
        think = self.thinking_default if thinking is None else thinking
        text = question_text(question, views, descriptions)
        messages = [*self._history(history), self._user(len(views), text)]
        prompt = self.inputs.render(messages, thinking=think)
        texts, opened, info = self._generate(
            [prompt],
            [[v.image for v in views]],
            [v.view_id for v in views],
            max_new_tokens or self.max_new_tokens,
        )
        return self._answer_from(texts[0], opened[0], views, think, info)

    def answer_video(
        self,
        question: str,
        frames: Sequence[tuple[float, Image.Image]],
        history: Sequence[Turn] = (),
        *,
        thinking: bool | None = None,
        max_new_tokens: int | None = None,
    ) -> Answer:
        """Ask about a clip through GLM's native video input: keyframes with timestamps."""
        self.load()
        if not frames:
            raise InvalidRequest("answer_video needs at least one frame")
        think = self.thinking_default if thinking is None else thinking
        messages = [
            *self._history(history),
            self._user(0, f"{VIDEO_SYSTEM_HINT}\n{question}", video=True),
        ]
        prompt = self.inputs.render(messages, thinking=think)
        texts, opened, info = self._generate(
            [prompt], [[]], [], max_new_tokens or self.max_new_tokens, videos=[[list(frames)]]
        )
        ans = self._answer_from(texts[0], opened[0], [], think, info)
        ans.debug["frame_times"] = [round(float(t), 3) for t, _ in frames]
        return ans

    def extract(self, view: ViewInput, kind: str) -> dict[str, Any]:
        self.load()
        key = extract_kind(kind)
        prompt = self.inputs.render([self._user(1, EXTRACT_PROMPTS[key])], thinking=False)
        texts, opened, info = self._generate(
            [prompt], [[view.image]], [view.view_id], self.max_new_tokens
        )
        split = split_thinking(texts[0], opened=opened[0])
        parsed = parse_json_output(strip_box_tokens(split.answer))
        return {
            "kind": key,
            "view_id": view.view_id,
            "ok": parsed.ok,
            "data": parsed.value if parsed.ok else None,
            "error": parsed.error,
            "repaired": parsed.repaired,
            "raw": texts[0],
            "model_id": self.model_id,
            "seconds": info.get("seconds"),
        }

    # ------------------------------------------------------------------ metrics
    def routing_counts(self) -> dict[int, list[int]]:
        """Cumulative tokens per expert per MoE layer since load (empty for dense models)."""
        return self.routing.counts()

    def last_routing_trace(self) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        return self.routing.last_trace()

    def metrics(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "loaded": self._loaded,
            "vision_cache": self.vision_cache.stats(),
            "routing": self.routing_counts() if self._loaded else {},
        }

    def metrics_text(self) -> str:
        """Prometheus exposition text: vision cache counters and expert routing counts."""
        s = self.vision_cache.stats()
        lines = [
            "# TYPE glimpse_glm_vision_cache_hits_total counter",
            f"glimpse_glm_vision_cache_hits_total {s['hits']}",
            "# TYPE glimpse_glm_vision_cache_misses_total counter",
            f"glimpse_glm_vision_cache_misses_total {s['misses']}",
            "# TYPE glimpse_glm_vision_cache_entries gauge",
            f"glimpse_glm_vision_cache_entries {s['entries']}",
            "# TYPE glimpse_glm_vision_tower_calls_total counter",
            f"glimpse_glm_vision_tower_calls_total {s['tower_calls']}",
        ]
        if self._loaded:
            lines += self.routing.prometheus_lines()
        return "\n".join(lines) + "\n"
