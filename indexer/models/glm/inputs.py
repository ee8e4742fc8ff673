"""Model inputs for Glm4v / Glm4vMoe checkpoints, built without torchvision.

Why not `Glm4vProcessor` directly: in transformers 5 the processor cannot be constructed
without its video processor, and `Glm4vVideoProcessor` requires torchvision. Installing
torchvision here pulls a multi-GB CUDA build of torch over the CPU one, so the default install
must not need it. When `AutoProcessor` does load (a GPU box with torchvision), Glimpse still
only takes its tokenizer, image processor and chat template, so both installs share one path:

* images go through the checkpoint's own Glm4v image processor (the PIL backend when
  torchvision is absent), `<|image|>` is expanded to grid_t*grid_h*grid_w / merge^2 tokens --
  exactly `Glm4vProcessor.replace_image_token`;
* video frames (keyframes Glimpse already extracted, with their timestamps) are resized to one
  common size with the video budget of the checkpoint's `video_preprocessor_config.json`, run
  through the same image processor with resizing off, and re-packed into `pixel_values_videos`
  with the video processor's patch layout (two consecutive frames per temporal patch; an odd
  count repeats the last frame, a single frame is duplicated). The prompt gets the processor's
  frame structure: `<|begin_of_image|>` + tokens + `<|end_of_image|>` + int(timestamp) per
  temporal group, inside `<|begin_of_video|>...<|end_of_video|>`;
* `mm_token_type_ids` (0 text, 1 image, 2 image token inside a video span) is computed like
  `Glm4vProcessor.create_mm_token_type_ids`; M-RoPE needs it.

Special token ids come from the model config; their strings from the tokenizer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

# Glm4vVideoProcessor's class defaults (pixel counts, compared with t*h*w)
DEFAULT_VIDEO_SIZE = {"shortest_edge": 112 * 112, "longest_edge": 28 * 28 * 2 * 30000}


def smart_resize(
    num_frames: int,
    height: int,
    width: int,
    temporal_factor: int,
    factor: int,
    min_pixels: int,
    max_pixels: int,
) -> tuple[int, int]:
    """transformers' glm4v smart_resize (imported when available, it has no torchvision need)."""
    from transformers.models.glm4v.image_processing_pil_glm4v import smart_resize as _sr

    h, w = _sr(
        num_frames=num_frames,
        height=height,
        width=width,
        temporal_factor=temporal_factor,
        factor=factor,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )
    return int(h), int(w)


def pack_video_patches(
    frame_patches: torch.Tensor,
    num_frames: int,
    channels: int,
    temporal_patch_size: int,
    patch_size: int,
) -> torch.Tensor:
    """Image-processor patches of `num_frames` same-size frames -> video-processor patches.

    The image processor repeats each frame temporal_patch_size times inside every patch vector
    (layout C, T, p, p). The video processor instead puts T consecutive frames there. Patch order
    over space is the same for both (grid_h/m, grid_w/m, m, m).
    """
    t = temporal_patch_size
    if num_frames % t:
        raise ValueError(f"{num_frames} frames is not a multiple of temporal patch {t}")
    n_patches = frame_patches.shape[0] // num_frames
    x = frame_patches.reshape(num_frames, n_patches, channels, t, patch_size, patch_size)
    x = x[:, :, :, 0]  # one copy of each frame: (n, N, C, p, p)
    x = x.reshape(num_frames // t, t, n_patches, channels, patch_size, patch_size)
    x = x.permute(0, 2, 3, 1, 4, 5)  # (groups, N, C, T, p, p)
    return x.reshape((num_frames // t) * n_patches, channels * t * patch_size * patch_size)


@dataclass
class VideoInput:
    frames: list[tuple[float, Image.Image]]


@dataclass
class BuiltInputs:
    tensors: dict[str, torch.Tensor]
    prompts: list[str]
    opened_think: list[bool]  # the rendered prompt ends inside <think>
    image_count: int = 0
    video_info: list[dict[str, Any]] = field(default_factory=list)


def load_chat_template(path: str | Path, tokenizer: Any, processor: Any = None) -> str | None:
    if processor is not None and getattr(processor, "chat_template", None):
        return str(processor.chat_template)
    p = Path(path)
    if (p / "chat_template.jinja").is_file():
        return (p / "chat_template.jinja").read_text(encoding="utf-8")
    if (p / "chat_template.json").is_file():
        data = json.loads((p / "chat_template.json").read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("chat_template"):
            return str(data["chat_template"])
    tpl = getattr(tokenizer, "chat_template", None)
    return str(tpl) if tpl else None


def load_video_size(path: str | Path) -> dict[str, int]:
    f = Path(path) / "video_preprocessor_config.json"
    if f.is_file():
        try:
            size = json.loads(f.read_text(encoding="utf-8")).get("size") or {}
            if size.get("shortest_edge") and size.get("longest_edge"):
                return {
                    "shortest_edge": int(size["shortest_edge"]),
                    "longest_edge": int(size["longest_edge"]),
                }
        except (ValueError, TypeError):
            log.warning("unreadable %s; using Glm4vVideoProcessor defaults", f)
    return dict(DEFAULT_VIDEO_SIZE)


class GlmInputs:
    """Chat rendering, placeholder expansion and pixel tensors for one checkpoint."""

    def __init__(
        self,
        tokenizer: Any,
        image_processor: Any,
        chat_template: str | None,
        config: Any,
        video_size: dict[str, int] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat_template = chat_template
        self.video_size = video_size or dict(DEFAULT_VIDEO_SIZE)
        vc = config.vision_config
        self.patch_size = int(getattr(image_processor, "patch_size", None) or vc.patch_size)
        self.merge_size = int(getattr(image_processor, "merge_size", None) or vc.spatial_merge_size)
        self.temporal_patch_size = int(
            getattr(image_processor, "temporal_patch_size", None) or vc.temporal_patch_size
        )
        self.channels = int(getattr(vc, "in_channels", 3))
        self.image_token_id = int(config.image_token_id)
        self.video_token_id = int(config.video_token_id)
        self.video_start_id = int(config.video_start_token_id)
        self.video_end_id = int(config.video_end_token_id)
        tok = tokenizer.convert_ids_to_tokens
        self.image_token = tok(self.image_token_id)
        self.video_token = tok(self.video_token_id)
        self.image_start = tok(int(config.image_start_token_id))
        self.image_end = tok(int(config.image_end_token_id))
        if not self.image_token or not self.video_token:
            raise ValueError("tokenizer lacks the image/video tokens named by the model config")

    # ---- text ----
    def render(
        self,
        messages: list[dict[str, Any]],
        *,
        thinking: bool,
        add_generation_prompt: bool = True,
    ) -> str:
        kwargs: dict[str, Any] = {
            "tokenize": False,
            "add_generation_prompt": add_generation_prompt,
            "enable_thinking": thinking,
        }
        if self.chat_template:
            kwargs["chat_template"] = self.chat_template
        return str(self.tokenizer.apply_chat_template(messages, **kwargs))

    def token_ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Glm4vProcessor.create_mm_token_type_ids, vectorised over a padded batch."""
        ids = input_ids.cpu().numpy()
        starts = np.cumsum(ids == self.video_start_id, axis=1)
        ends = np.cumsum(ids == self.video_end_id, axis=1)
        in_video = starts > ends
        types = np.zeros_like(ids)
        is_img = ids == self.image_token_id
        types[is_img & in_video] = 2
        types[is_img & ~in_video] = 1
        return torch.from_numpy(types).to(input_ids.dtype)

    # ---- pixels ----
    def image_tensors(self, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
        rgb = [im.convert("RGB") if im.mode != "RGB" else im for im in images]
        out = self.image_processor(images=rgb, return_tensors="pt")
        return {
            "pixel_values": torch.as_tensor(out["pixel_values"]),
            "image_grid_thw": torch.as_tensor(out["image_grid_thw"]).long(),
        }

    def video_tensors(self, frames: Sequence[tuple[float, Image.Image]]) -> dict[str, Any]:
        if not frames:
            raise ValueError("a video needs at least one frame")
        frames = sorted(frames, key=lambda f: f[0])
        t = self.temporal_patch_size
        padded = list(frames)
        while len(padded) < t or len(padded) % t:
            padded.append(padded[-1])  # a single frame is shorter than the temporal patch
        first = padded[0][1]
        height, width = first.height, first.width
        h, w = smart_resize(
            num_frames=len(padded),
            height=height,
            width=width,
            temporal_factor=t,
            factor=self.patch_size * self.merge_size,
            min_pixels=self.video_size["shortest_edge"],
            max_pixels=self.video_size["longest_edge"],
        )
        resized = [im.convert("RGB").resize((w, h), Image.Resampling.BICUBIC) for _, im in padded]
        out = self.image_processor(images=resized, do_resize=False, return_tensors="pt")
        pv = torch.as_tensor(out["pixel_values"])
        grid = torch.as_tensor(out["image_grid_thw"])
        gh, gw = int(grid[0, 1]), int(grid[0, 2])
        packed = pack_video_patches(pv, len(padded), self.channels, t, self.patch_size)
        groups = len(padded) // t
        # one timestamp per temporal group (the processor's `timestamps[::2]`)
        stamps = [padded[i][0] for i in range(0, len(padded), t)]
        return {
            "pixel_values_videos": packed,
            "video_grid_thw": torch.tensor([[groups, gh, gw]], dtype=torch.long),
            "timestamps": stamps,
            "tokens_per_group": gh * gw // (self.merge_size**2),
            "size": (w, h),
            "frames_in": len(frames),
            "frames_packed": len(padded),
        }

    def _video_structure(self, stamps: list[float], tokens_per_group: int) -> str:
        return "".join(
            f"{self.image_start}{self.image_token * tokens_per_group}{self.image_end}{int(s)}"
            for s in stamps
        )

    # ---- everything ----
    def build(
        self,
        prompts: Sequence[str],
        images: Sequence[Sequence[Image.Image]],
        videos: Sequence[Sequence[Sequence[tuple[float, Image.Image]]]] | None = None,
    ) -> BuiltInputs:
        """Rendered prompts (one `<|image|>` per image, one `<|video|>` per video) -> tensors."""
        all_images = [im for per in images for im in per]
        tensors: dict[str, torch.Tensor] = {}
        merge2 = self.merge_size**2
        counts: list[int] = []
        if all_images:
            img = self.image_tensors(all_images)
            tensors.update(img)
            counts = [int(g.prod()) // merge2 for g in img["image_grid_thw"]]
        video_info: list[dict[str, Any]] = []
        video_pv: list[torch.Tensor] = []
        video_grid: list[torch.Tensor] = []
        expanded: list[str] = []
        k = 0
        for b, text in enumerate(prompts):
            parts = text.split(self.image_token)
            if len(parts) - 1 != len(images[b]):
                raise ValueError(
                    f"prompt {b} has {len(parts) - 1} image placeholders "
                    f"for {len(images[b])} images"
                )
            rebuilt = parts[0]
            for part in parts[1:]:
                rebuilt += self.image_token * counts[k] + part
                k += 1
            vids = list(videos[b]) if videos else []
            vparts = rebuilt.split(self.video_token)
            if len(vparts) - 1 != len(vids):
                raise ValueError(
                    f"prompt {b} has {len(vparts) - 1} video placeholders for {len(vids)} videos"
                )
            rebuilt = vparts[0]
            for frames, part in zip(vids, vparts[1:], strict=True):
                v = self.video_tensors(frames)
                video_pv.append(v.pop("pixel_values_videos"))
                video_grid.append(v.pop("video_grid_thw"))
                video_info.append(v)
                rebuilt += self._video_structure(v["timestamps"], v["tokens_per_group"]) + part
            expanded.append(rebuilt)
        if video_pv:
            tensors["pixel_values_videos"] = torch.cat(video_pv, dim=0)
            tensors["video_grid_thw"] = torch.cat(video_grid, dim=0)
        enc = self.tokenizer(expanded, padding=True, return_tensors="pt", add_special_tokens=False)
        input_ids = enc["input_ids"]
        tensors["input_ids"] = input_ids
        tensors["attention_mask"] = enc["attention_mask"]
        if all_images or video_pv:
            tensors["mm_token_type_ids"] = self.mm_token_type_ids(input_ids)
        opened = [p.rstrip().endswith("<think>") for p in prompts]
        return BuiltInputs(tensors, list(prompts), opened, len(all_images), video_info)
