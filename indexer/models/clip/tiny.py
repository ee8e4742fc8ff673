"""Random CLIP and SigLIP checkpoints built offline from configs, for the tests, the bench and
`scripts/gpu_check.py`.

Same classes as the real checkpoints (`CLIPModel` + `CLIPImageProcessorPil`, `SiglipModel` +
`SiglipImageProcessorPil`), scaled down: 2-layer towers, 32-wide, 32 px images in 8 px patches.
The tokenizer is a word-level vocabulary written here with `tokenizers` (lower-cased, punctuation
split, `<|startoftext|>` / `<|endoftext|>` around every text as CLIP's post-processor does), saved
as a `PreTrainedTokenizerFast`; SigLIP's has a 16-token context (the real one 64), to which
Glimpse pads SigLIP texts as the model was trained. Weights are random: only shapes,
normalisation, determinism, batching and the paths through production's loader
(`ClipEmbedder`) can be asserted on, not what a vector means.

`build_shape_twin` writes a random model with a real checkpoint's exact shapes (ViT-B/32 by
default) so the bench can time what a real one would cost here without downloading it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BOS, EOS, PAD, UNK = "<|startoftext|>", "<|endoftext|>", "<pad>", "<unk>"

_CORPUS = (
    "a photo of a cat dog bird car red blue green tree house person people face sign text "
    "reads open coffee cup rocket horse astronaut motorcycle brick wall page document video "
    "frame on the in with and of an one two three sofa street park bright dark picture "
    "kind small large tabby tiger lion fish shark boat plane train truck bus chair table "
    "umbrella clock book laptop phone keyboard banana apple pizza cake bottle wine glass "
    "espresso mug space sky night sea beach mountain snow grass flower animal vehicle food"
)

TINY_TEXT: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}
TINY_VISION: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}
CLIP_PROJECTION = 16
CLIP_CONTEXT = 77
SIGLIP_CONTEXT = 16

# openai/clip-vit-base-patch32's shapes (its config.json), for timing without its weights
VIT_B32: dict[str, Any] = {
    "text": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
             "num_attention_heads": 8, "vocab_size": 49408},
    "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
               "num_attention_heads": 12, "image_size": 224, "patch_size": 32},
    "projection_dim": 512,
}


def _tokenizer(context: int):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted(set(_CORPUS.split()))
    vocab = {t: i for i, t in enumerate([PAD, UNK, BOS, EOS, *words, ".", ",", "'", ":"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation()])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        model_max_length=context)
    return fast


def build_tiny_clip(out_dir: str | os.PathLike[str], *, seed: int = 0,
                    shapes: dict[str, Any] | None = None) -> Path:
    """Write a tiny CLIPModel checkpoint (config, weights, tokenizer, image processor)."""
    import torch
    from transformers import CLIPConfig, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(CLIP_CONTEXT)
    text = dict((shapes or {}).get("text", TINY_TEXT))
    vision = dict((shapes or {}).get("vision", TINY_VISION))
    text.setdefault("vocab_size", len(tok))
    text["vocab_size"] = max(int(text["vocab_size"]), len(tok))
    text.update(max_position_embeddings=CLIP_CONTEXT, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    config = CLIPConfig(text_config=text, vision_config=vision,
                        projection_dim=(shapes or {}).get("projection_dim", CLIP_PROJECTION))
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(out)
    tok.save_pretrained(out)
    side = int(vision["image_size"])
    CLIPImageProcessorPil(size={"shortest_edge": side},
                          crop_size={"height": side, "width": side}).save_pretrained(out)
    return out


def build_tiny_siglip(out_dir: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a tiny SiglipModel checkpoint (sigmoid loss head: logit scale and bias)."""
    import torch
    from transformers import SiglipConfig, SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(SIGLIP_CONTEXT)
    text = dict(TINY_TEXT, vocab_size=len(tok), max_position_embeddings=SIGLIP_CONTEXT,
                pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                eos_token_id=tok.eos_token_id)
    config = SiglipConfig(text_config=text, vision_config=dict(TINY_VISION))
    torch.manual_seed(seed)
    SiglipModel(config).eval().save_pretrained(out)
    tok.save_pretrained(out)
    side = int(TINY_VISION["image_size"])
    SiglipImageProcessorPil(size={"height": side, "width": side}).save_pretrained(out)
    return out


def build_shape_twin(out_dir: str | os.PathLike[str], shapes: dict[str, Any] = VIT_B32) -> Path:
    """A random CLIPModel with a real checkpoint's shapes: its speed, none of its quality."""
    return build_tiny_clip(out_dir, shapes=shapes)

