"""The `openai` backend: GLM-4.5V served by any OpenAI-compatible server (vLLM, SGLang).

Generation only. GLM-4.5V has no embedding endpoint on these servers, so `embed_texts`,
`embed_query_images` and `encode_views` raise `ModelUnavailable`: index with the `glm` backend
(same model in-process, E5-V-style embeddings) or the `cpu` backend, and point this one at the
server for describe / answer / score / extract.

Requests: `POST {base_url}/chat/completions` (base_url as in the OpenAI SDK, e.g.
`http://gpu-host:8000/v1`), images as base64 JPEG data URLs, video as timestamped keyframes,
thinking toggled with `chat_template_kwargs: {"enable_thinking": bool}`, and
`skip_special_tokens: false` so GLM's `<|begin_of_box|>` grounding tokens survive. Reasoning
comes back as `reasoning_content` (vLLM/SGLang with `--reasoning-parser glm45`) or, without a
parser, as `<think>...</think>` inside the content; both are handled. 429, 5xx, timeouts and
connection errors are retried with exponential backoff (Retry-After honoured, capped), then
become `ModelUnavailable`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np
from PIL import Image

from indexer.domain import Answer, Description, Turn, ViewEncoding, ViewInput
from indexer.errors import InvalidRequest, ModelUnavailable
from indexer.models.glm.answers import assemble_answer, question_text
from indexer.models.glm.boxes import strip_box_tokens
from indexer.models.glm.jsonparse import parse_json_output
from indexer.models.glm.prompts import (
    DESCRIBE_PROMPT,
    EXTRACT_PROMPTS,
    SCORE_PROMPT,
    VIDEO_SYSTEM_HINT,
    extract_kind,
)
from indexer.models.glm.text import split_thinking, strip_control
from indexer.settings import ModelSettings

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
CLIENT_ERROR_STATUS = {400, 413, 422}
MAX_IMAGE_SIDE = 3072  # GLM's processor caps pixels anyway; no point shipping 80 MP as base64
NO_EMBEDDINGS = (
    "the openai backend is generation-only: OpenAI-compatible GLM-4.5V servers expose no "
    "embedding endpoint. Index with GLIMPSE_MODEL__BACKEND=glm (GLM in-process) or cpu, and use "
    "openai for describe/answer/score/extract."
)


def image_data_url(image: Image.Image, max_side: int = MAX_IMAGE_SIDE, quality: int = 90) -> str:
    im = image.convert("RGB") if image.mode != "RGB" else image
    if max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize(
            (max(1, round(im.width * scale)), max(1, round(im.height * scale))),
            Image.Resampling.BICUBIC,
        )
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _image_part(image: Image.Image) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image_data_url(image)}}


class OpenAIModel:
    """GLM-4.5V behind an OpenAI-compatible chat-completions endpoint."""

    generative = True

    def __init__(
        self,
        settings: ModelSettings,
        *,
        max_tokens: int = 2048,
        caption_max_tokens: int = 128,
        thinking: bool = True,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 20.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.max_tokens = max_tokens
        self.caption_max_tokens = caption_max_tokens
        self.thinking_default = thinking
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._transport = transport
        self._client: httpx.Client | None = None
        self.model_id = f"openai:{settings.served_name}"
        self.spaces: dict[str, int] = {}  # no vector space: generation only
        self.requests = 0
        self.retried = 0

    # ------------------------------------------------------------------ http
    def load(self) -> None:
        if self._client is not None:
            return
        if not self.settings.base_url:
            raise ModelUnavailable(
                "the openai backend needs GLIMPSE_MODEL__BASE_URL, e.g. http://gpu-host:8000/v1"
            )
        timeout = httpx.Timeout(self.settings.timeout_s, connect=min(10.0, self.settings.timeout_s))
        self._client = httpx.Client(
            base_url=self.settings.base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {self.settings.api_key}"},
            transport=self._transport,
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _sleep_before_retry(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * (2**attempt))
        if response is not None and (ra := response.headers.get("retry-after")):
            with contextlib.suppress(ValueError):
                delay = min(self.max_backoff_s, max(0.0, float(ra)))
        delay *= 1.0 + 0.1 * random.random()  # a little jitter
        self.retried += 1
        time.sleep(delay)

    def _raise_for(self, r: httpx.Response) -> None:
        body = r.text[:500]
        if r.status_code in CLIENT_ERROR_STATUS:
            raise InvalidRequest(
                f"model server rejected the request ({r.status_code}): {body}",
                detail={"status": r.status_code},
            )
        raise ModelUnavailable(
            f"model server answered {r.status_code}: {body}", detail={"status": r.status_code}
        )

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.load()
        assert self._client is not None
        last: str = ""
        for attempt in range(self.retries + 1):
            response: httpx.Response | None = None
            try:
                self.requests += 1
                response = self._client.post("/chat/completions", json=payload)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if response.status_code == 200:
                    try:
                        data: dict[str, Any] = response.json()
                    except ValueError as e:
                        raise ModelUnavailable(f"model server sent invalid JSON: {e}") from e
                    return data
                if response.status_code not in RETRY_STATUS:
                    self._raise_for(response)
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt < self.retries:
                log.warning("model server attempt %d failed (%s); retrying", attempt + 1, last)
                self._sleep_before_retry(attempt, response)
        raise ModelUnavailable(
            f"model server at {self.settings.base_url} unavailable after "
            f"{self.retries + 1} attempts: {last}",
            detail={"attempts": self.retries + 1},
        )

    def _payload(
        self,
        messages: list[dict[str, Any]],
        *,
        thinking: bool,
        max_tokens: int,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "model": self.settings.served_name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "chat_template_kwargs": {"enable_thinking": thinking},
            "skip_special_tokens": False,  # keep <|begin_of_box|> ... <|end_of_box|>
            **extra,
        }

    @staticmethod
    def _message(data: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError) as e:
            raise ModelUnavailable(f"model server reply has no choices: {str(data)[:200]}") from e
        msg = choice.get("message") or {}
        content = msg.get("content") or ""
        reasoning = msg.get("reasoning_content") or msg.get("reasoning") or ""
        return content, reasoning, choice

    # ------------------------------------------------------------------ messages
    @staticmethod
    def _user(images: Sequence[Image.Image], text: str) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [_image_part(im) for im in images]
        parts.append({"type": "text", "text": text})
        return {"role": "user", "content": parts}

    @staticmethod
    def _history(history: Sequence[Turn]) -> list[dict[str, Any]]:
        return [{"role": t.role, "content": t.text} for t in history]

    def _answer_messages(
        self,
        question: str,
        views: Sequence[ViewInput],
        descriptions: Sequence[Description],
        history: Sequence[Turn],
    ) -> list[dict[str, Any]]:
        text = question_text(question, views, descriptions)
        return [*self._history(history), self._user([v.image for v in views], text)]

    def _to_answer(
        self,
        content: str,
        reasoning: str,
        views: Sequence[ViewInput],
        thinking: bool,
        debug: dict[str, Any],
    ) -> Answer:
        split = split_thinking(content)
        thinking_text = "\n\n".join(
            t for t in (strip_control(reasoning).strip(), split.thinking) if t
        )
        debug.update(
            backend="openai",
            model_id=self.model_id,
            thinking=thinking,
            truncated=split.truncated or debug.get("finish_reason") == "length",
            raw=content,
        )
        return assemble_answer(split.answer, thinking_text, views, thinking=thinking, debug=debug)

    # ------------------------------------------------------------------ protocol
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelUnavailable(NO_EMBEDDINGS)

    def embed_query_images(self, views: Sequence[ViewInput]) -> list[dict[str, np.ndarray]]:
        raise ModelUnavailable(NO_EMBEDDINGS)

    def encode_views(self, views: Sequence[ViewInput]) -> list[ViewEncoding]:
        raise ModelUnavailable(NO_EMBEDDINGS)

    def describe(self, view: ViewInput) -> Description:
        data = self._post(
            self._payload(
                [self._user([view.image], DESCRIBE_PROMPT)],
                thinking=False,
                max_tokens=self.caption_max_tokens,
            )
        )
        content, _, _ = self._message(data)
        caption = strip_box_tokens(split_thinking(content).answer).strip()
        return Description(caption=caption, extra={"model": self.model_id})

    def score(self, query: str, view: ViewInput, description: Description | None) -> float:
        text = SCORE_PROMPT.format(query=query.strip().rstrip("?"))
        if description is not None and description.caption:
            text = f"Image description: {description.caption}\n{text}"
        data = self._post(
            self._payload(
                [self._user([view.image], text)],
                thinking=False,
                max_tokens=1,
                logprobs=True,
                top_logprobs=20,
            )
        )
        content, _, choice = self._message(data)
        p = _yes_no_from_logprobs(choice.get("logprobs"))
        if p is not None:
            return p
        word = split_thinking(content).answer.strip().lower()
        if word.startswith("yes"):
            return 1.0
        if word.startswith("no"):
            return 0.0
        return 0.5

    def answer(
        self,
        question: str,
        views: Sequence[ViewInput],
        descriptions: Sequence[Description],
        history: Sequence[Turn] = (),
        *,
        thinking: bool | None = None,
        max_tokens: int | None = None,
    ) -> Answer:
        think = self.thinking_default if thinking is None else thinking
        t0 = time.perf_counter()
        data = self._post(
            self._payload(
                self._answer_messages(question, views, descriptions, history),
                thinking=think,
                max_tokens=max_tokens or self.max_tokens,
            )
        )
        content, reasoning, choice = self._message(data)
        debug = {
            "seconds": round(time.perf_counter() - t0, 4),
            "usage": data.get("usage", {}),
            "finish_reason": choice.get("finish_reason"),
        }
        return self._to_answer(content, reasoning, views, think, debug)

    def answer_stream(
        self,
        question: str,
        views: Sequence[ViewInput],
        descriptions: Sequence[Description],
        history: Sequence[Turn] = (),
        *,
        thinking: bool | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Server-sent events as they arrive: `{"type": "reasoning"|"content", "text": delta}`,
        then one `{"type": "done", "answer": Answer}`. Connection-level failures before the
        first byte are retried like `answer`; a stream cut midway raises ModelUnavailable."""
        self.load()
        assert self._client is not None
        think = self.thinking_default if thinking is None else thinking
        payload = self._payload(
            self._answer_messages(question, views, descriptions, history),
            thinking=think,
            max_tokens=max_tokens or self.max_tokens,
            stream=True,
        )
        t0 = time.perf_counter()
        content: list[str] = []
        reasoning: list[str] = []
        finish: str | None = None
        last = ""
        for attempt in range(self.retries + 1):
            response: httpx.Response | None = None
            try:
                self.requests += 1
                with self._client.stream("POST", "/chat/completions", json=payload) as response:
                    if response.status_code != 200:
                        response.read()
                        if response.status_code not in RETRY_STATUS:
                            self._raise_for(response)
                        last = f"HTTP {response.status_code}"
                    else:
                        for event in _sse_events(response.iter_lines()):
                            for choice in event.get("choices") or []:
                                delta = choice.get("delta") or {}
                                r = delta.get("reasoning_content") or delta.get("reasoning")
                                if r:
                                    reasoning.append(r)
                                    yield {"type": "reasoning", "text": r}
                                c = delta.get("content")
                                if c:
                                    content.append(c)
                                    yield {"type": "content", "text": c}
                                finish = choice.get("finish_reason") or finish
                        debug: dict[str, Any] = {
                            "seconds": round(time.perf_counter() - t0, 4),
                            "finish_reason": finish,
                            "streamed": True,
                        }
                        answer = self._to_answer(
                            "".join(content), "".join(reasoning), views, think, debug
                        )
                        yield {"type": "done", "answer": answer}
                        return
            except (httpx.TimeoutException, httpx.TransportError) as e:
                if content or reasoning:
                    raise ModelUnavailable(f"model server stream broke off: {e}") from e
                last = f"{type(e).__name__}: {e}"
            if attempt < self.retries:
                self._sleep_before_retry(attempt, response)
        raise ModelUnavailable(
            f"model server at {self.settings.base_url} unavailable after "
            f"{self.retries + 1} attempts: {last}"
        )

    def answer_video(
        self,
        question: str,
        frames: Sequence[tuple[float, Image.Image]],
        history: Sequence[Turn] = (),
        *,
        thinking: bool | None = None,
        max_tokens: int | None = None,
    ) -> Answer:
        """Keyframes as images, each introduced by its timestamp (portable across servers; the
        glm backend uses GLM's native video input instead)."""
        if not frames:
            raise InvalidRequest("answer_video needs at least one frame")
        think = self.thinking_default if thinking is None else thinking
        parts: list[dict[str, Any]] = []
        for t, im in sorted(frames, key=lambda f: f[0]):
            parts.append({"type": "text", "text": f"Frame at {t:.1f}s:"})
            parts.append(_image_part(im))
        parts.append({"type": "text", "text": f"{VIDEO_SYSTEM_HINT}\n{question}"})
        t0 = time.perf_counter()
        data = self._post(
            self._payload(
                [*self._history(history), {"role": "user", "content": parts}],
                thinking=think,
                max_tokens=max_tokens or self.max_tokens,
            )
        )
        content, reasoning, choice = self._message(data)
        debug = {
            "seconds": round(time.perf_counter() - t0, 4),
            "usage": data.get("usage", {}),
            "finish_reason": choice.get("finish_reason"),
            "frame_times": [round(float(t), 3) for t, _ in frames],
        }
        return self._to_answer(content, reasoning, [], think, debug)

    def extract(self, view: ViewInput, kind: str) -> dict[str, Any]:
        key = extract_kind(kind)
        data = self._post(
            self._payload(
                [self._user([view.image], EXTRACT_PROMPTS[key])],
                thinking=False,
                max_tokens=self.max_tokens,
            )
        )
        content, _, _ = self._message(data)
        parsed = parse_json_output(strip_box_tokens(split_thinking(content).answer))
        return {
            "kind": key,
            "view_id": view.view_id,
            "ok": parsed.ok,
            "data": parsed.value if parsed.ok else None,
            "error": parsed.error,
            "repaired": parsed.repaired,
            "raw": content,
            "model_id": self.model_id,
        }

    def health(self) -> dict[str, Any]:
        """GET {base_url}/models once (no retries): is the server up, what does it serve."""
        self.load()
        assert self._client is not None
        try:
            r = self._client.get("/models")
        except httpx.HTTPError as e:
            raise ModelUnavailable(f"model server unreachable: {e}") from e
        if r.status_code != 200:
            self._raise_for(r)
        ids = [m.get("id") for m in (r.json().get("data") or [])]
        return {"ok": True, "models": ids, "served_name_listed": self.settings.served_name in ids}


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """`data: {...}` lines of an SSE stream, until `data: [DONE]`."""
    for line in lines:
        line = line.strip()
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        body = line[len("data:") :].strip()
        if body == "[DONE]":
            return
        try:
            yield json.loads(body)
        except json.JSONDecodeError:
            log.warning("skipping malformed SSE line: %s", body[:120])


def _yes_no_from_logprobs(logprobs: Any) -> float | None:
    """P(yes) / (P(yes) + P(no)) over the first generated token's top logprobs."""
    try:
        first = logprobs["content"][0]
    except (KeyError, IndexError, TypeError):
        return None
    candidates = list(first.get("top_logprobs") or [])
    if first.get("token") is not None:
        candidates.append({"token": first["token"], "logprob": first.get("logprob")})
    p_yes = p_no = 0.0
    seen: set[str] = set()
    for c in candidates:
        tok = c.get("token")
        lp = c.get("logprob")
        if tok is None or lp is None or tok in seen:
            continue
        seen.add(tok)
        word = tok.strip().lower()
        if word == "yes":
            p_yes += float(np.exp(lp))
        elif word == "no":
            p_no += float(np.exp(lp))
    if p_yes + p_no <= 0:
        return None
    return p_yes / (p_yes + p_no)
