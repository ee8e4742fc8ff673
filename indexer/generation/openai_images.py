"""A client of an OpenAI-compatible images API (OpenAI itself, or a self-hosted server with
the same wire format): `POST {base_url}/images/generations` with
`{"model", "prompt", "n": 1, "size": "WxH", "response_format": "b64_json"}` and a Bearer
key, answered `{"created", "data": [{"b64_json", "revised_prompt"?}]}`.

The image is drawn by the remote model, not from the index: provenance is empty and the checks
are the index model's whole-image checks (verify.check_whole_image). The API takes no seed
unless `send_seed` (some self-hosted servers accept one), so the same seed may not give the
same image; that is said in the notes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import time
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image, UnidentifiedImageError

from indexer.errors import InvalidRequest, ModelUnavailable
from indexer.generation.base import Check, Generated
from indexer.models.base import VisionLanguageModel

if TYPE_CHECKING:
    from indexer.settings import GenerationSettings


class OpenAIImagesGenerator:
    name = "openai"

    def __init__(self, base_url: str, *, api_key: str = "EMPTY", model_name: str = "gpt-image-1",
                 timeout_s: float = 120.0, model: VisionLanguageModel | None = None,
                 send_seed: bool = False, transport: httpx.BaseTransport | None = None) -> None:
        self.url = base_url.rstrip("/") + "/images/generations"
        self.model_name = model_name
        self.model = model
        self.send_seed = send_seed
        self._client = httpx.Client(timeout=timeout_s, transport=transport, headers={
            "Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})

    @classmethod
    def from_settings(cls, g: GenerationSettings, model: VisionLanguageModel | None = None
                      ) -> OpenAIImagesGenerator:
        if not g.images_base_url:
            raise ModelUnavailable("the openai generation backend needs an images API: set "
                                   "GLIMPSE_GENERATION__IMAGES_BASE_URL (e.g. "
                                   "https://api.openai.com/v1)")
        return cls(g.images_base_url, api_key=g.images_api_key, model_name=g.images_model,
                   timeout_s=g.images_timeout_s, model=model)

    def generate(self, prompt: str, seed: int, *, size: tuple[int, int] = (512, 512),
                 tenant: str = "default") -> Generated:
        from indexer.generation.prompt import parse

        t0 = time.perf_counter()
        body: dict[str, Any] = {"model": self.model_name, "prompt": prompt, "n": 1,
                                "size": f"{size[0]}x{size[1]}", "response_format": "b64_json"}
        if self.send_seed:
            body["seed"] = seed
        try:
            r = self._client.post(self.url, json=body)
        except httpx.HTTPError as e:
            raise ModelUnavailable(f"the images API at {self.url} did not answer: {e}") from e
        payload = _json(r)
        if r.status_code >= 400:
            msg = _error_message(payload) or r.text[:200] or f"HTTP {r.status_code}"
            if 400 <= r.status_code < 500 and r.status_code not in (401, 403, 429):
                raise InvalidRequest(f"the images API refused the prompt: {msg}")
            raise ModelUnavailable(f"the images API answered {r.status_code}: {msg}")
        image, revised = _first_image(payload)
        notes = [] if self.send_seed else ["the images API takes no seed: the same seed may "
                                           "give a different image"]
        if revised:
            notes.append(f"the API revised the prompt to: {revised}")
        if image.size != size:
            notes.append(f"the API answered {image.width}x{image.height}; resized to "
                         f"{size[0]}x{size[1]}")
            image = image.resize(size, Image.Resampling.LANCZOS)
        t1 = time.perf_counter()
        plan = None
        with contextlib.suppress(InvalidRequest):
            plan = parse(prompt)
        checks: list[Check] = []
        scores: dict[str, float] = {}
        if plan is not None and self.model is not None:
            from indexer.generation.verify import check_whole_image

            checks, scores = check_whole_image(self.model, image, plan)
        return Generated(image, self.name, plan.to_dict() if plan else {"prompt": prompt}, [],
                         checks, 1, scores, {"api": round((t1 - t0) * 1000, 1),
                                             "verify": round((time.perf_counter() - t1) * 1000,
                                                             1)}, notes)

    def close(self) -> None:
        self._client.close()


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def _error_message(payload: Any) -> str | None:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return None


def _first_image(payload: Any) -> tuple[Image.Image, str | None]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ModelUnavailable("the images API answered without a `data` list")
    item = data[0]
    b64 = item.get("b64_json")
    if not isinstance(b64, str):
        raise ModelUnavailable("the images API answered no `b64_json` image (a `url` answer "
                               "is not fetched: ask for response_format b64_json)")
    try:
        raw = base64.b64decode(b64, validate=True)
        img = Image.open(io.BytesIO(raw))
        img.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as e:
        raise ModelUnavailable(f"the images API answered an undecodable image: {e}") from e
    revised = item.get("revised_prompt")
    return img.convert("RGB"), revised if isinstance(revised, str) else None
