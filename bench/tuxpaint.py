"""A labelled evaluation set from Debian's `tuxpaint-stamps-default`: real stamps (many are
photographs, cut out with alpha) in category folders, each with an English description.

    apt-get install tuxpaint-stamps-default      # /usr/share/tuxpaint/stamps
    python scripts/build_eval_set.py              # writes the manifest (cached)

Categories are folder prefixes with a natural query phrase ("a bird", "fruit"). A fixed seed
splits them: a few categories are held out of the index entirely (their queries are the
"absent concept" queries of the no-good-match check), and each remaining category's images
are split into a tuning half and a test half. Levers are tuned on the tuning half only; the
bench reports the test half. The manifest (JSON, paths into the package) is cached; no image
is copied or committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STAMPS = Path(os.environ.get("GLIMPSE_TUXPAINT_STAMPS", "/usr/share/tuxpaint/stamps"))
SEED = 13
VERSION = 1

# (category, query a person would type, folder prefixes under the stamps root)
CATEGORIES: list[tuple[str, str, tuple[str, ...]]] = [
    ("bird", "a bird", ("animals/birds",)),
    ("fish", "a fish", ("animals/fish",)),
    ("insect", "an insect", ("animals/insects",)),
    ("cattle", "a cow", ("animals/mammals/bovines",)),
    ("rodent", "a rodent", ("animals/mammals/rodents",)),
    ("cat", "a cat", ("animals/mammals/cats",)),
    ("dog", "a dog", ("animals/mammals/dogs",)),
    ("horse", "a horse", ("animals/mammals/equines",)),
    ("deer", "a deer", ("animals/mammals/deer",)),
    ("bear", "a bear", ("animals/mammals/bears",)),
    ("sea mammal", "a whale or a dolphin", ("animals/mammals/aquatic",)),
    ("ape", "a monkey", ("animals/mammals/apes",)),
    ("fruit", "fruit", ("food/fruit",)),
    ("vegetable", "vegetables", ("food/vegetables",)),
    ("nut", "nuts", ("food/nuts",)),
    ("flower", "a flower", ("plants/flowers",)),
    ("tree", "a tree", ("plants/trees",)),
    ("house", "a house", ("town/houses",)),
    ("road sign", "a road sign", ("town/roadsigns",)),
    ("flag", "a flag", ("town/flags",)),
    ("monument", "a monument", ("town/monuments",)),
    ("tool", "a tool", ("household/tools",)),
    ("dishes", "dishes and cutlery", ("household/dishes",)),
    ("hat", "a hat", ("clothes/hats",)),
    ("clothing", "clothes", ("clothes",)),
    ("instrument", "a musical instrument", ("hobbies/music",)),
    ("planet", "a planet", ("space/planets",)),
    ("sports", "sports equipment", ("sports",)),
    ("christmas", "christmas decorations", ("seasonal/christmas",)),
    ("halloween", "halloween", ("seasonal/halloween",)),
    ("train", "a train", ("vehicles/locomotive",)),
    ("car", "a car", ("vehicles/auto",)),
    ("boat", "a boat", ("vehicles/ship",)),
    ("chess", "a chess piece", ("symbols/chess",)),
    ("coin", "a coin", ("symbols/money/us/coins", "symbols/money/euro/coins",
                        "symbols/money/canadian/coins", "symbols/money/japanese")),
    ("music symbol", "a musical note", ("symbols/music",)),
    ("medical", "medical equipment", ("medical",)),
]
# Held out of the index: their queries must come back flagged "no good match".
N_ABSENT = 9
# Concepts no stamp in the indexed categories shows, as a second kind of absent query.
ABSENT_EXTRA = [
    "a laptop computer", "a bicycle", "a snowy mountain", "a toothbrush", "an umbrella",
    "a skyscraper", "a pizza", "a wristwatch", "a sofa", "a traffic jam", "a bridge",
    "a motorcycle",
]


@dataclass(frozen=True)
class Item:
    path: str  # absolute path of the stamp PNG
    category: str
    split: str  # "tune" | "test"
    description: str


@dataclass(frozen=True)
class Query:
    text: str
    category: str | None  # None: an absent concept
    split: str


def _category_of(rel: str) -> str | None:
    best: tuple[int, str] | None = None
    for name, _, prefixes in CATEGORIES:
        for p in prefixes:
            if (rel == p or rel.startswith(p + "/")) and (best is None or len(p) > best[0]):
                best = (len(p), name)
    return None if best is None else best[1]


def _description(png: Path) -> str:
    txt = png.with_suffix(".txt")
    try:
        return txt.read_text(encoding="utf-8", errors="replace").splitlines()[0].strip()
    except (OSError, IndexError):
        return ""


def build(root: Path = STAMPS, seed: int = SEED) -> dict[str, Any]:
    """The manifest: items (indexed categories, both halves), queries (present and absent,
    both halves), and which categories are held out."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} not found: install Debian's tuxpaint-stamps-default "
            "(apt-get install tuxpaint-stamps-default) or set GLIMPSE_TUXPAINT_STAMPS")
    by_cat: dict[str, list[Path]] = {}
    for png in sorted(root.rglob("*.png")):
        if png.stem.endswith("_back") or "_mirror" in png.stem:
            continue  # tuxpaint's alternate faces of a stamp
        cat = _category_of(png.parent.relative_to(root).as_posix())
        if cat is not None:
            by_cat.setdefault(cat, []).append(png)
    rng = random.Random(seed)
    names = sorted(c for c in by_cat if len(by_cat[c]) >= 3)
    absent = sorted(rng.sample(names, N_ABSENT))
    query_of = {c: q for c, q, _ in CATEGORIES}
    items: list[Item] = []
    queries: list[Query] = []
    for cat in names:
        if cat in absent:
            continue
        files = by_cat[cat][:]
        rng.shuffle(files)
        half = len(files) // 2
        for i, f in enumerate(files):
            split = "tune" if i < half else "test"
            items.append(Item(str(f), cat, split, _description(f)))
        for split in ("tune", "test"):
            queries.append(Query(query_of[cat], cat, split))
    extra = ABSENT_EXTRA[:]
    rng.shuffle(extra)
    held = [query_of[c] for c in absent]
    for i, text in enumerate(held + extra):
        half_of = held if i < len(held) else extra
        j = i if i < len(held) else i - len(held)
        queries.append(Query(text, None, "tune" if j < len(half_of) // 2 else "test"))
    return {"version": VERSION, "seed": seed, "root": str(root), "absent_categories": absent,
            "items": [asdict(x) for x in items], "queries": [asdict(q) for q in queries]}


def manifest(cache_dir: Path | None = None, *, refresh: bool = False) -> dict[str, Any]:
    """The cached manifest (rebuilt when the stamps, the categories or the seed change)."""
    from indexer.models.cpu.onnx_cache import default_cache_dir

    key = hashlib.sha256(repr((VERSION, SEED, CATEGORIES, N_ABSENT, ABSENT_EXTRA,
                               str(STAMPS))).encode()).hexdigest()[:12]
    path = (cache_dir or default_cache_dir()) / "eval" / f"tuxpaint-{key}.json"
    if path.exists() and not refresh:
        data: dict[str, Any] = json.loads(path.read_text())
        if all(Path(it["path"]).exists() for it in data["items"][:5]):
            return data
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return data


def items(data: dict[str, Any], split: str) -> list[Item]:
    return [Item(**x) for x in data["items"] if x["split"] == split]


def queries(data: dict[str, Any], split: str) -> list[Query]:
    return [Query(**x) for x in data["queries"] if x["split"] == split]
