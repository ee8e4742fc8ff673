"""A tiny GLM-4.5V-architecture checkpoint built offline, for tests and `scripts/gpu_check.py`.

Same classes as the real model (`Glm4vMoeForConditionalGeneration` + `Glm4vProcessor` with the
real Glm4v image processor), scaled down: 3 text layers (layer 0 dense, 1-2 MoE with 8 routed
experts, top-2, 1 shared expert, sigmoid router with correction bias), hidden 64, a 2-layer
vision tower with the real patch geometry (patch 14, temporal patch 2, spatial merge 2) and 3D
RoPE whose sections keep the real 8:12:12 proportions. The tokenizer is a byte-level BPE trained
here with `tokenizers` on a few lines and carries GLM's special tokens. Weights are random: the
outputs are meaningless, only shapes, routing, caching and parsing can be asserted on.

The checkpoint is written with `save_pretrained` and read back by production's loader
(`GlmModel`), so the test exercises the same path a real checkpoint takes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:
    import pytest
except ImportError:  # scripts/gpu_check.py may run where pytest is not installed
    pytest = None  # type: ignore[assignment]

# GLM-4.5V's added tokens (tokenizer_config.json of zai-org/GLM-4.5V; the processor source reads
# <|image|>, <|video|>, <|begin_of_video|>, <|end_of_video|>; the model config names the image and
# video start/end ids). Order matters only for readability: ids are read back from the tokenizer.
GLM_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<|begin_of_audio|>",
    "<|end_of_audio|>",
    "<|image|>",
    "<|video|>",
    "<|begin_of_box|>",
    "<|end_of_box|>",
    "/nothink",
]
# Added but not "special": GLM keeps the reasoning markers in decoded text.
GLM_PLAIN_ADDED_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# A GLM-4.5V-style chat template (same markers as the real one). One difference on purpose: with
# thinking on, the generation prompt opens `<think>` (like Qwen3 / R1 templates), so even a random
# model's output is "inside" the reasoning block and the steps path is exercised. The loader
# handles both: a template that opens <think> and a model that emits it itself (the real GLM).
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{%- for m in messages -%}"
    "{%- if m.role == 'system' -%}<|system|>\n"
    "{%- elif m.role == 'user' -%}<|user|>\n"
    "{%- else -%}<|assistant|>\n{%- endif -%}"
    "{%- if m.content is string -%}{{ m.content }}"
    "{%- else -%}{%- for c in m.content -%}"
    "{%- if c.type == 'image' -%}<|begin_of_image|><|image|><|end_of_image|>"
    "{%- elif c.type == 'video' -%}<|begin_of_video|><|video|><|end_of_video|>"
    "{%- elif c.type == 'text' -%}{{ c.text }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if m.role == 'user' and enable_thinking is defined and not enable_thinking -%}"
    "/nothink{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>\n"
    "{%- if enable_thinking is defined and not enable_thinking -%}<think></think>\n"
    "{%- else -%}<think>{%- endif -%}"
    "{%- endif -%}"
)

_CORPUS = [
    "Summarize the above image in one word:",
    "Summarize the above sentence in one word:",
    "Does this image match the query? Answer yes or no.",
    "yes no yes no Yes No",
    "a photo of a red car parked on the street next to a tree",
    "the cat sits on the mat, the dog runs in the park",
    "Describe this image in one sentence. What is in the video?",
    'Return JSON with keys and values: {"rows": [[1, 2], [3, 4]], "text": "hello"}',
    "The box is at [[100, 200, 300, 400]] in the picture of image 1 and image 2.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 seconds frame timestamp",
]

TINY_TEXT: dict[str, Any] = {
    "vocab_size": 0,  # set from the tokenizer
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,  # head_dim 32
    "num_key_value_heads": 1,
    "moe_intermediate_size": 32,
    "n_routed_experts": 8,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "first_k_dense_replace": 1,
    "n_group": 1,
    "topk_group": 1,
    "norm_topk_prob": True,
    "max_position_embeddings": 4096,
    "attention_bias": True,
    "tie_word_embeddings": False,
    # head_dim 32 * partial_rotary_factor 0.5 / 2 = 8 = 2 + 3 + 3 (real: 128*0.5/2 = 32 = 8+12+12)
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "partial_rotary_factor": 0.5,
        "mrope_section": [2, 3, 3],
    },
}
TINY_VISION: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 32,
    "num_heads": 2,
    "intermediate_size": 64,
    "out_hidden_size": 64,  # = text hidden size
    "patch_size": 14,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "image_size": 112,
    "hidden_act": "silu",
}
# Pixel counts (smart_resize compares t*h*w with them, t = temporal patch 2): at most 112x112 per
# image, i.e. 8x8 patches -> 16 merged tokens; at least 56x56.
TINY_IMAGE_SIZE = {"shortest_edge": 2 * 56 * 56, "longest_edge": 2 * 112 * 112}
TINY_VIDEO_SIZE = {"shortest_edge": 2 * 56 * 56, "longest_edge": 6 * 112 * 112}


def _train_tokenizer():  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=GLM_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
    fast.add_tokens(GLM_PLAIN_ADDED_TOKENS)
    return fast


def build_tiny_glm(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    text_overrides: dict[str, Any] | None = None,
    vision_overrides: dict[str, Any] | None = None,
    image_size: dict[str, int] | None = None,
) -> Path:
    """Write a tiny Glm4vMoe checkpoint (config, weights, tokenizer, processor) to `out_dir`.

    The overrides scale it up (e.g. a real-width vision tower for timing the vision cache in
    scripts/gpu_check.py); the defaults are what the unit tests use.
    """
    import torch
    from transformers import (
        GenerationConfig,
        Glm4vMoeConfig,
        Glm4vMoeForConditionalGeneration,
    )
    from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in GLM_SPECIAL_TOKENS}
    eos = [ids["<|endoftext|>"], ids["<|user|>"], ids["<|observation|>"]]

    text = dict(TINY_TEXT)
    text.update(text_overrides or {})
    text.update(vocab_size=len(tokenizer), eos_token_id=eos, pad_token_id=ids["<|endoftext|>"])
    vision = dict(TINY_VISION)
    vision.update(vision_overrides or {})
    vision["out_hidden_size"] = text["hidden_size"]
    config = Glm4vMoeConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image|>"],
        video_token_id=ids["<|video|>"],
        image_start_token_id=ids["<|begin_of_image|>"],
        image_end_token_id=ids["<|end_of_image|>"],
        video_start_token_id=ids["<|begin_of_video|>"],
        video_end_token_id=ids["<|end_of_video|>"],
    )
    torch.manual_seed(seed)
    model = Glm4vMoeForConditionalGeneration(config).eval()
    with torch.no_grad():
        # Random init leaves the routers at zero (every token ties) and the correction bias at
        # zero; give both small random values so routing differs by token, as in a trained model.
        for name, module in model.named_modules():
            if name.endswith("mlp.gate") and hasattr(module, "e_score_correction_bias"):
                module.weight.normal_(0.0, 0.5)
                module.e_score_correction_bias.normal_(0.0, 0.05)
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=ids["<|endoftext|>"], do_sample=False
    )
    model.save_pretrained(out)

    # Written piece by piece, as a real checkpoint ships them: Glm4vProcessor itself cannot be
    # constructed without torchvision (its video processor), see indexer/models/glm/inputs.py.
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    Glm4vImageProcessorPil(size=dict(image_size or TINY_IMAGE_SIZE)).save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (out / "processor_config.json").write_text(json.dumps({"processor_class": "Glm4vProcessor"}))
    # The video processor needs torchvision (not installed); Glimpse builds video inputs itself
    # and reads only this budget file, written like the real checkpoint's.
    (out / "video_preprocessor_config.json").write_text(
        json.dumps(
            {
                "video_processor_type": "Glm4vVideoProcessor",
                "size": TINY_VIDEO_SIZE,
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
            }
        )
    )
    return out


def _tiny_glm_dir(tmp_path_factory: Any) -> Path:
    return build_tiny_glm(tmp_path_factory.mktemp("tiny-glm"))


def load_tiny_glm(path: str | os.PathLike[str], device: str = "cpu", **kw: Any) -> Any:
    """The checkpoint loaded through production's loader (`GlmModel`), one torch thread."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    from indexer.models.glm import GlmModel
    from indexer.settings import ModelSettings

    kw.setdefault("max_new_tokens", 12)
    model = GlmModel(
        ModelSettings(backend="glm", path=str(path), device=device, torch_threads=1), **kw
    )
    model.load()
    return model


if pytest is not None:

    @pytest.fixture(scope="session")
    def tiny_glm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return _tiny_glm_dir(tmp_path_factory)

    @pytest.fixture(scope="session")
    def tiny_glm(tiny_glm_dir: Path) -> Any:
        """The tiny checkpoint loaded through production's loader, float32 on CPU."""
        return load_tiny_glm(tiny_glm_dir)
