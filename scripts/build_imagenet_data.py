"""Build indexer/models/cpu/data/imagenet_classes.json from WordNet 3.0 (Debian wordnet-base).

ImageNet-1k wnids ("n02124075") are WordNet 3.0 noun synset offsets. For each of the 1000
classes (in classifier output order) this writes its display name, WordNet synonyms, gloss,
the first-parent hypernym chain (for prompts: "an Egyptian cat, a kind of cat") and every
ancestor (all parents, for aggregating class probabilities into general concepts: "cat",
"animal", "vehicle"). The runtime only reads the generated JSON; WordNet is not needed there.

Input: the ordered wnid list, from a Keras-format imagenet_class_index.json
({"0": ["n01440764", "tench"], ...}) or, by default, from the already shipped output.

    python scripts/build_imagenet_data.py [--class-index imagenet_class_index.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "indexer" / "models" / "cpu" / "data" / "imagenet_classes.json"
WORDNET = Path("/usr/share/wordnet/data.noun")


def parse_wordnet(path: Path) -> dict[str, dict]:
    """offset -> {lemmas, gloss, parents} for every noun synset."""
    synsets: dict[str, dict] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            body, _, gloss = line.partition(" | ")
            f = body.split()
            offset, w_cnt = f[0], int(f[3], 16)
            lemmas = [f[4 + 2 * i] for i in range(w_cnt)]
            i = 4 + 2 * w_cnt
            p_cnt = int(f[i])
            parents = []
            for k in range(p_cnt):
                sym, target, pos = f[i + 1 + 4 * k], f[i + 2 + 4 * k], f[i + 3 + 4 * k]
                if sym in ("@", "@i") and pos == "n":
                    parents.append(target)
            synsets[offset] = {
                "lemmas": [_clean(w) for w in lemmas],
                "gloss": gloss.strip(),
                "parents": parents,
            }
    return synsets


def _clean(lemma: str) -> str:
    lemma = lemma.replace("_", " ")
    if lemma.endswith(")") and "(" in lemma:  # adjective markers like "(a)"
        lemma = lemma[: lemma.rindex("(")]
    return lemma.strip()


def first_chain(offset: str, synsets: dict[str, dict]) -> list[str]:
    chain: list[str] = []
    cur = offset
    while synsets[cur]["parents"]:
        cur = synsets[cur]["parents"][0]
        chain.append(cur)
    return chain


def all_ancestors(offset: str, synsets: dict[str, dict]) -> dict[str, int]:
    """ancestor offset -> smallest depth above the class (1 = parent)."""
    depth: dict[str, int] = {}
    frontier = [(p, 1) for p in synsets[offset]["parents"]]
    while frontier:
        cur, d = frontier.pop()
        if cur in depth and depth[cur] <= d:
            continue
        depth[cur] = d
        frontier.extend((p, d + 1) for p in synsets[cur]["parents"])
    return depth


def load_wnids(class_index: Path | None) -> list[tuple[str, str]]:
    if class_index is not None:
        raw = json.loads(class_index.read_text())
        return [(raw[str(i)][0], raw[str(i)][1].replace("_", " ")) for i in range(len(raw))]
    shipped = json.loads(OUT.read_text())
    return [(c["wnid"], c["keras_name"]) for c in shipped["classes"]]


def build(wnids: list[tuple[str, str]], synsets: dict[str, dict]) -> dict:
    names = [k for _, k in wnids]
    classes = []
    concepts: dict[str, dict] = {}
    for idx, (wnid, keras_name) in enumerate(wnids):
        off = wnid[1:]
        s = synsets[off]
        chain = first_chain(off, synsets)
        anc = all_ancestors(off, synsets)
        name = keras_name
        if names.count(keras_name) > 1:  # "crane" (bird / machine), "maillot"
            name = f"{keras_name} ({synsets[chain[0]]['lemmas'][0]})"
        classes.append(
            {
                "index": idx,
                "wnid": wnid,
                "keras_name": keras_name,
                "name": name,
                "synonyms": s["lemmas"],
                "gloss": s["gloss"],
                "chain": ["n" + c for c in chain],
                "ancestors": {"n" + a: d for a, d in sorted(anc.items(), key=lambda kv: kv[1])},
            }
        )
        for a in anc:
            concepts.setdefault(
                "n" + a,
                {"name": synsets[a]["lemmas"][0], "synonyms": synsets[a]["lemmas"],
                 "gloss": synsets[a]["gloss"]},
            )
    return {
        "source": "ImageNet-1k class order; WordNet 3.0 nouns (wordnet-base)",
        "classes": classes,
        "concepts": concepts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--class-index", type=Path, default=None)
    ap.add_argument("--wordnet", type=Path, default=WORDNET)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    synsets = parse_wordnet(args.wordnet)
    data = build(load_wnids(args.class_index), synsets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    print(f"wrote {args.out}: {len(data['classes'])} classes, {len(data['concepts'])} concepts")


if __name__ == "__main__":
    main()
