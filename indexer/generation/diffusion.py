"""The gpu backend: a Stable Diffusion family pipeline through `diffusers`, grounded in the
index when it can be.

- grounded (default when the index has every concept of the prompt): the cpu backend's
  composition of retrieved instances is the init image of an img2img pass (SDEdit, Meng et
  al. 2022): the layout, the counts and the instances come from the index, the diffusion
  model re-renders them as one coherent picture at `strength` (0.55). Provenance is the
  composition's sources, marked as exemplars.
- text: plain text-to-image when the prompt has concepts the index lacks, or when asked.
Checks are the whole-image checks of the index's own model (verify.check_whole_image): the
pipeline does not say where it put anything, so only what the detector and classifier find
is confirmed.

Weights are never downloaded: `generation.diffusion_path` is a local pipeline folder
(`save_pretrained` layout). Tests build a tiny randomly initialised pipeline from configs;
scripts/gpu_check.py runs the same code on CUDA.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from PIL import Image

from indexer.errors import GlimpseError, ModelUnavailable
from indexer.generation.base import Check, Generated, SourceUse
from indexer.models.base import VisionLanguageModel

if TYPE_CHECKING:
    from indexer.context import Glimpse
    from indexer.generation.base import Generator
    from indexer.settings import GenerationSettings

log = logging.getLogger(__name__)

STRENGTH = 0.55
GUIDANCE = 7.5


class DiffusionGenerator:
    name = "diffusion"

    def __init__(self, path: str, *, model: VisionLanguageModel | None = None,
                 grounding: Generator | None = None, device: str = "auto", steps: int = 30,
                 strength: float = STRENGTH, guidance_scale: float = GUIDANCE) -> None:
        self.path = path
        self.model = model  # the index's model, for checks (None: no checks)
        self.grounding = grounding  # the cpu backend, for exemplar compositions
        self.device_name = device
        self.steps = max(1, steps)
        self.strength = strength
        self.guidance_scale = guidance_scale
        self._txt2img: Any = None
        self._img2img: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, core: Glimpse, g: GenerationSettings) -> DiffusionGenerator:
        if not g.diffusion_path:
            raise ModelUnavailable("the diffusion backend needs a local diffusers pipeline: "
                                   "set GLIMPSE_GENERATION__DIFFUSION_PATH (nothing is "
                                   "downloaded at run time)")
        from indexer.generation.cpu import CompositionGenerator
        from indexer.generation.library import IndexLibrary

        grounding = CompositionGenerator(lambda t: IndexLibrary(core, t), core.model,
                                         max_attempts=g.max_attempts, blend=g.blend)
        return cls(g.diffusion_path, model=core.model, grounding=grounding,
                   device=g.diffusion_device, steps=g.diffusion_steps)

    # -- runtime ---------------------------------------------------------------------------
    @property
    def device(self) -> str:
        import torch

        if self.device_name != "auto":
            return self.device_name
        return "cuda" if torch.cuda.is_available() else "cpu"

    def load(self) -> None:
        with self._lock:
            if self._txt2img is not None:
                return
            import torch
            from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

            dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
            try:
                pipe = StableDiffusionPipeline.from_pretrained(
                    self.path, dtype=dtype, safety_checker=None,
                    requires_safety_checker=False, local_files_only=True)
            except (OSError, ValueError) as e:
                raise ModelUnavailable(f"cannot load the diffusers pipeline at {self.path}: "
                                       f"{e}") from e
            pipe = pipe.to(self.device)
            pipe.set_progress_bar_config(disable=True)
            self._txt2img = pipe
            # the img2img pipeline shares every module (no second copy of the weights)
            self._img2img = StableDiffusionImg2ImgPipeline(**pipe.components)
            self._img2img.set_progress_bar_config(disable=True)
            log.info("diffusion pipeline loaded from %s on %s", self.path, self.device)

    # -- generation ------------------------------------------------------------------------
    def generate(self, prompt: str, seed: int, *, size: tuple[int, int] = (512, 512),
                 tenant: str = "default", mode: str = "auto") -> Generated:
        import torch

        from indexer.errors import InvalidRequest
        from indexer.generation.prompt import parse

        t0 = time.perf_counter()
        self.load()
        width, height = (max(8, s // 8 * 8) for s in size)  # the VAE's 8x downsampling
        plan = None
        with contextlib.suppress(InvalidRequest):  # free text: generated, nothing to check
            plan = parse(prompt)
        exemplar: Generated | None = None
        notes: list[str] = []
        if mode in ("auto", "grounded") and self.grounding is not None and plan is not None:
            try:
                exemplar = self.grounding.generate(prompt, seed, size=(width, height),
                                                   tenant=tenant)
            except GlimpseError as e:
                if mode == "grounded":
                    raise
                notes.append(f"not grounded in the index ({e.message}); text-to-image")
        gen = torch.Generator(device="cpu").manual_seed(seed)  # same seed, same noise
        with torch.inference_mode():
            if exemplar is not None:
                out = self._img2img(prompt=prompt, image=exemplar.image.convert("RGB"),
                                    strength=self.strength, num_inference_steps=self.steps,
                                    guidance_scale=self.guidance_scale, generator=gen)
                notes.append(f"img2img from a composition of {len(exemplar.provenance)} "
                             f"indexed source(s) at strength {self.strength}")
            else:
                out = self._txt2img(prompt=prompt, height=height, width=width,
                                    num_inference_steps=self.steps,
                                    guidance_scale=self.guidance_scale, generator=gen)
        image: Image.Image = out.images[0].convert("RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.LANCZOS)
        prov = []
        if exemplar is not None:
            prov = [SourceUse("exemplar", p.concept, p.media_id, p.view_id, p.box, p.placed,
                              p.cut, p.matched, p.recoloured) for p in exemplar.provenance]
        checks: list[Check] = []
        scores: dict[str, float] = {}
        t1 = time.perf_counter()
        if plan is not None and self.model is not None:
            from indexer.generation.verify import check_whole_image

            checks, scores = check_whole_image(self.model, image, plan)
        elif plan is None:
            notes.append("the prompt was not parsed into constraints: nothing was checked")
        return Generated(image, self.name, plan.to_dict() if plan else {"prompt": prompt},
                         prov, checks, 1, scores,
                         {"diffusion": round((t1 - t0) * 1000, 1),
                          "verify": round((time.perf_counter() - t1) * 1000, 1)}, notes)
