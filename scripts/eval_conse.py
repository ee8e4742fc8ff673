"""Measure the ConSE levers of the cpu backend: text->image top-1 / MRR over the fixed query
set in indexer/models/cpu/evalset.py (scikit-image samples + a generated sign).

    OMP_NUM_THREADS=2 python scripts/eval_conse.py

Each row changes one lever against the row before it (or against the base, as named).
The classifier, OCR and face detector run once; only the text side is recomputed per row.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from indexer.models.base import l2_normalize  # noqa: E402
from indexer.models.cpu import PERSON_TEXT, CpuModel, conse, evalset  # noqa: E402
from indexer.settings import ModelSettings  # noqa: E402


def main() -> None:
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    model = CpuModel(ModelSettings(ocr="on", torch_threads=threads))
    model.load()
    vs = evalset.views()
    names = [v.view_id for v in vs]
    t = time.perf_counter()
    p_full, _ = model.classifier.run([v.image for v in vs], ("full",))
    t_full = (time.perf_counter() - t) / len(vs)
    t = time.perf_counter()
    p_multi, _ = model.classifier.run([v.image for v in vs], ("full", "center"))
    t_multi = (time.perf_counter() - t) / len(vs)
    ocr_text = [" ".join(line.text for line in model.ocr.read(v.image)) for v in vs]
    faces = [model.faces.detect(v.image) for v in vs]
    queries = model.embed_texts([q for q, _ in evalset.QUERIES])
    person = model.text.embed([PERSON_TEXT])[0]
    ocr_vecs = model.text.embed([f"text: {x}" if x else "(empty)" for x in ocr_text])

    emb_cache: dict[tuple, np.ndarray] = {}

    def run(cfg: conse.ConseConfig, probs: np.ndarray, ocr_w: float, face_w: float) -> dict:
        key = (cfg.prompts, cfg.hypernym_weight, cfg.hypernym_decay, cfg.hypernym_depth)
        if key not in emb_cache:
            emb_cache[key] = conse.class_embeddings(model.text, cfg)
        sem = conse.semantic_vectors(probs, emb_cache[key], cfg)
        for i in range(len(vs)):
            if ocr_text[i]:
                sem[i] = sem[i] + ocr_w * ocr_vecs[i]
            if faces[i]:
                sem[i] = sem[i] + face_w * max(f.score for f in faces[i]) * person
        return evalset.rank_metrics(queries @ l2_normalize(sem).T, names)

    plain = conse.ConseConfig(prompts=("name",), hypernym_weight=0.0, top_t=10)
    rows: list[tuple[str, conse.ConseConfig, np.ndarray, float, float]] = [
        ("plain: class name, T=10", plain, p_full, 0, 0),
        ("prompt 'a photo of a X'", replace(plain, prompts=("photo",)), p_full, 0, 0),
        ("prompt 'X, a kind of <parent>'", replace(plain, prompts=("kind",)), p_full, 0, 0),
        ("prompt synonyms + gloss", replace(plain, prompts=("synonyms",)), p_full, 0, 0),
        ("ensemble photo+kind+synonyms", replace(plain, prompts=("photo", "kind", "synonyms")),
         p_full, 0, 0),
    ]
    ens = rows[-1][1]
    rows.append(("ensemble name+photo", replace(plain, prompts=("name", "photo")), p_full, 0, 0))
    for w, dec, depth in ((0.25, 0.5, 2),):
        rows.append((f"name + hypernyms w={w} decay={dec} depth={depth}",
                     replace(plain, hypernym_weight=w, hypernym_decay=dec, hypernym_depth=depth),
                     p_full, 0, 0))
    for w, dec, depth in ((0.5, 0.5, 3), (1.0, 0.5, 3)):
        rows.append((f"ensemble + hypernyms w={w} decay={dec} depth={depth}",
                     replace(ens, hypernym_weight=w, hypernym_decay=dec, hypernym_depth=depth),
                     p_full, 0, 0))
    base = model.cfg
    for tt in (1, 3, 5, 20):
        rows.append((f"default, top-T={tt}", replace(base, top_t=tt), p_full, 0, 0))
    for tau in (0.5, 2.0):
        rows.append((f"default, temperature={tau}", replace(base, temperature=tau), p_full, 0, 0))
    rows += [
        ("default config (see conse.ConseConfig)", base, p_full, 0, 0),
        ("default + OCR fusion", base, p_full, 0.6, 0),
        ("default + OCR + face->person fusion", base, p_full, 0.6, 0.5),
        ("default + OCR + faces + multi-crop (full+centre)", base, p_multi, 0.6, 0.5),
    ]
    print(f"{len(vs)} images, {len(evalset.QUERIES)} queries; classifier {t_full*1000:.0f} ms/img "
          f"single crop, {t_multi*1000:.0f} ms/img two crops")
    print(f"| {'lever':<58} | top-1 | MRR   | ranks")
    print(f"|{'-'*60}|-------|-------|------")
    for label, cfg, probs, ow, fw in rows:
        r = run(cfg, probs, ow, fw)
        print(f"| {label:<58} | {r['top1']:.3f} | {r['mrr']:.3f} | {r['ranks']}")

    # calibration of score(): target pairs vs every other pair, default model
    descs = model.encode_views(vs)
    pos: list[float] = []
    neg: list[float] = []
    for q, target in evalset.QUERIES:
        for v, e in zip(vs, descs, strict=True):
            s = model.score(q, v, e.description)
            (pos if v.view_id == target else neg).append(s)
    pos_a, neg_a = np.asarray(pos), np.asarray(neg)
    print(f"score(): target pairs mean {pos_a.mean():.2f} (min {pos_a.min():.2f}); other pairs "
          f"mean {neg_a.mean():.2f}, p90 {np.quantile(neg_a, 0.9):.2f}, "
          f"share >= 0.2: {(neg_a >= 0.2).mean():.2f}; targets >= 0.2: {(pos_a >= 0.2).mean():.2f}")


if __name__ == "__main__":
    main()
