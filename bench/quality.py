"""`glimpse bench --only quality`: retrieval quality on real labelled images.

One half of the tuxpaint evaluation set (see tuxpaint.py; the bench reports the test half,
levers are tuned on the tuning half) is ingested through the real pipeline and runner, then
searched through the real SearchService, as the API does:

- text->image: one query per indexed category ("a bird", "fruit"); P@10 and mAP (over the
  first 50 results) against the category labels;
- image->image: every indexed image searches by its media id for the rest; P@10;
- no-good-match: queries for held-out categories and for concepts no indexed stamp shows must
  come back flagged (false accept = not flagged), present ones must not (false reject);
  images of held-out categories likewise for search by example image;
- baselines in the same run, over the same images: plain ConSE (bare ImageNet class names,
  top-10 classes, the classifier's own probabilities) ranked by cosine, and raw EfficientNet
  penultimate-feature nearest neighbours by cosine;
- scanned pages: character error rate of real PDFs rendered at 150 dpi, read back through the
  document extraction path, against their text layers (documents.py's scanned_pages).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingest import index_paths
from indexer.settings import Settings

log = logging.getLogger(__name__)
K_AP = 50


def _ap_p10(ranked: list[str], relevant: set[str]) -> tuple[float, float]:
    hits, precs = 0, []
    for i, mid in enumerate(ranked[:K_AP]):
        if mid in relevant:
            hits += 1
            precs.append(hits / (i + 1))
    p10 = sum(mid in relevant for mid in ranked[:10]) / 10
    return p10, (sum(precs) / len(relevant) if relevant else 0.0)


def _rates(flags_absent: list[bool], flags_present: list[bool]) -> dict[str, float]:
    return {"false_accept": round(1 - float(np.mean(flags_absent)), 3) if flags_absent else 0.0,
            "false_reject": round(float(np.mean(flags_present)), 3) if flags_present else 0.0,
            "absent_queries": len(flags_absent), "present_queries": len(flags_present)}


def best_threshold(top_absent: list[float], top_present: list[float]) -> float:
    """The no-good-match threshold that minimises false accepts + false rejects on these
    top-result relevances (flagged when the best relevance is under the threshold)."""
    cands = sorted(set(top_absent + top_present))
    best, cost = 0.0, float("inf")
    for a, b in zip([0.0, *cands], [*cands, 1.0], strict=True):
        t = (a + b) / 2
        c = float(np.mean([x >= t for x in top_absent]) if top_absent else 0.0) + \
            float(np.mean([x < t for x in top_present]) if top_present else 0.0)
        if c < cost - 1e-12:
            best, cost = t, c
    return round(float(best), 3)


def bench_quality(settings: Settings, *, split: str = "test",
                  quick: bool = False) -> dict[str, Any]:
    from bench import tuxpaint
    from indexer.media.images import load_view_rgb
    from indexer.models.base import l2_normalize
    from indexer.models.cpu import conse
    from indexer.search import SearchQuery

    data = tuxpaint.manifest()
    items = tuxpaint.items(data, split)
    queries = tuxpaint.queries(data, split)
    absent_imgs = _absent_images(data, split, limit=20 if quick else 60)
    if quick:
        items = items[::3]
    tmp = Path(tempfile.mkdtemp(prefix="glimpse-quality-"))
    try:
        t0 = time.perf_counter()
        core, mids = index_paths(settings, tmp / "data", [Path(it.path) for it in items])
        s = core.settings
        media_cat = {mid: it.category for it, mid in zip(items, mids, strict=True)}
        ingest_s = time.perf_counter() - t0
        by_cat: dict[str, set[str]] = {}
        for mid, c in media_cat.items():
            by_cat.setdefault(c, set()).add(mid)
        search = core.search

        # -- text -> image through the service ---------------------------------------------
        present = [q for q in queries if q.category is not None and q.category in by_cat]
        absent = [q for q in queries if q.category is None]
        rows: list[dict[str, Any]] = []
        top_present: list[float] = []
        top_absent: list[float] = []
        lat: list[float] = []
        flags_present, flags_absent = [], []
        for q in present + absent:
            t1 = time.perf_counter()
            resp = search.search(SearchQuery(text=q.text, k=K_AP))
            lat.append((time.perf_counter() - t1) * 1000)
            ranked = [r.media_id for r in resp.results]
            top = resp.results[0].relevance or 0.0 if resp.results else 0.0
            if q.category is None:
                top_absent.append(top)
                flags_absent.append(resp.no_good_match)
                continue
            top_present.append(top)
            flags_present.append(resp.no_good_match)
            p10, ap = _ap_p10(ranked, by_cat[q.category])
            rows.append({"query": q.text, "relevant": len(by_cat[q.category]),
                         "p10": p10, "ap": round(ap, 3), "top_relevance": round(top, 3)})

        # -- the views' own classifier outputs, for the baselines ---------------------------
        mids = list(media_cat)
        views = {v.media_id: v for mid in mids for v in core.catalog.views_of(mid)[:1]}
        probs = np.zeros((len(mids), 1000), np.float32)
        for i, mid in enumerate(mids):
            for k, p in views[mid].description.extra.get("top_classes", []):
                probs[i, int(k)] = float(p)
        model = core.model
        cpu: Any = getattr(model, "embedder", model)
        plain_cfg = conse.ConseConfig()  # bare class names, top-10, tau 1
        plain_emb = conse.class_embeddings(cpu.text, plain_cfg)  # type: ignore[attr-defined]
        plain = conse.semantic_vectors(probs, plain_emb, plain_cfg)
        imgs = [load_view_rgb(core.blobs.open_path(core.catalog.get_media(mid).sha256),
                              s.limits) for mid in mids]
        _, feats = cpu.classifier.run(imgs)  # type: ignore[attr-defined]
        feats = l2_normalize(feats)
        base_rows = []
        for q in present:
            qv = model.embed_texts([q.text])[0]
            order = np.argsort(-(plain @ qv), kind="stable")
            p10, ap = _ap_p10([mids[i] for i in order], by_cat[q.category])  # type: ignore[index]
            base_rows.append((p10, ap))

        # -- image -> image -----------------------------------------------------------------
        sims = feats @ feats.T
        np.fill_diagonal(sims, -np.inf)
        raw_p10, svc_p10, img_top_present, img_flags_present, img_lat = [], [], [], [], []
        for i, mid in enumerate(mids):
            nn = np.argsort(-sims[i], kind="stable")[:10]
            cat = media_cat[mid]
            raw_p10.append(float(np.mean([media_cat[mids[j]] == cat for j in nn])))
            t1 = time.perf_counter()
            resp = search.search(SearchQuery(example_media_id=mid, k=10))
            img_lat.append((time.perf_counter() - t1) * 1000)
            got = [r.media_id for r in resp.results]
            svc_p10.append(sum(media_cat.get(g) == cat for g in got) / 10)
            if len(by_cat[cat]) > 1:  # a category with company in the index: a good match exists
                img_top_present.append(resp.results[0].relevance or 0.0 if resp.results else 0.0)
                img_flags_present.append(resp.no_good_match)
        img_top_absent, img_flags_absent = [], []
        from PIL import Image

        for path in absent_imgs:
            with Image.open(path) as im:
                im.load()
                resp = search.search(SearchQuery(image=im.convert("RGBA"), k=10))
            img_top_absent.append(resp.results[0].relevance or 0.0 if resp.results else 0.0)
            img_flags_absent.append(resp.no_good_match)
        core.close()
        return {
            "split": split, "images": len(mids), "categories": len(by_cat),
            "absent_categories": data["absent_categories"],
            "ingest_s": round(ingest_s, 1),
            "thresholds": {"text": s.search.no_match_threshold,
                           "image": s.search.no_match_threshold_image},
            "text_to_image": {
                "service": {"p10": _mean([r["p10"] for r in rows]),
                            "map": _mean([r["ap"] for r in rows])},
                "baseline_plain_conse": {"p10": _mean([b[0] for b in base_rows]),
                                         "map": _mean([b[1] for b in base_rows])},
                "p10_ceiling": _mean([min(10, len(by_cat[q.category])) / 10  # type: ignore[index]
                                      for q in present]),
                "per_query": rows,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
            },
            "image_to_image": {
                "service": {"p10": _mean(svc_p10)},
                "baseline_raw_features": {"p10": _mean(raw_p10)},
                "latency_ms_p50": round(float(np.percentile(img_lat, 50)), 1),
            },
            "no_good_match": {
                "text": _rates(flags_absent, flags_present),
                "image": _rates(img_flags_absent, img_flags_present),
                "best_threshold_text": best_threshold(top_absent, top_present),
                "best_threshold_image": best_threshold(img_top_absent, img_top_present),
                "top_relevance_present_p10_p50": _q(top_present),
                "top_relevance_absent_p50_p90": _q(top_absent, (50, 90)),
            },
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _absent_images(data: dict[str, Any], split: str, limit: int) -> list[str]:
    """Images of the held-out categories (never indexed): example-image queries whose
    concept is absent. Half of each held-out category per split, by the manifest's seed."""
    import random

    from bench import tuxpaint

    root = Path(data["root"])
    out: list[str] = []
    for cat in data["absent_categories"]:
        prefixes = next(p for c, _, p in tuxpaint.CATEGORIES if c == cat)
        files = sorted({str(f) for p in prefixes for f in (root / p).rglob("*.png")
                        if tuxpaint._category_of(f.parent.relative_to(root).as_posix()) == cat})
        random.Random(data["seed"]).shuffle(files)
        half = len(files) // 2
        out += files[:half] if split == "tune" else files[half:]
    random.Random(data["seed"]).shuffle(out)
    return out[:limit]


def _no_leaders(text: str) -> str:
    """Dot leaders (". . . ." in a table of contents) are typographic fill that a text
    layer spells out dot by dot and OCR reads as a few dots or none: not text to compare."""
    import re

    return re.sub(r"(?:\s*\.){3,}", " ", text)


def _mean(xs: list[float]) -> float:
    return round(float(np.mean(xs)), 3) if xs else 0.0


def _q(xs: list[float], qs: tuple[int, ...] = (10, 50)) -> list[float]:
    return [round(float(np.percentile(xs, q)), 3) for q in qs] if xs else []


# Real PDFs from Debian documentation packages in the base image (scripts/test.sh installs
# them where missing): a C library manual (prose, code, formulas) and a freedesktop spec.
SCANNED_PDFS = ("/usr/share/doc/libtasn1-doc/libtasn1.pdf",
                "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")


def bench_scanned_pages(n_pages: int = 8, dpi: int = 150) -> dict[str, Any]:
    """Character error rate of pages rendered at `dpi` like a scan and read back through the
    document extraction path (OCR, orientation, layout, reading order), against each page's
    text layer; pages are spread evenly through each PDF, those with under 200 characters
    of text layer skipped. Baseline in the same run: the same OCR lines joined top-to-bottom
    without the orientation and layout steps."""
    import pypdfium2 as pdfium

    from bench.documents import cer
    from indexer.documents.extract import extract
    from indexer.domain import ViewInput
    from indexer.models.cpu.ocr import OcrEngine

    ocr = OcrEngine(threads=max(1, int(__import__("os").environ.get("OMP_NUM_THREADS", "1"))))
    ocr.load()
    out: dict[str, Any] = {"dpi": dpi, "documents": []}
    all_cer, all_base, turned = [], [], 0
    for path in SCANNED_PDFS:
        if not Path(path).exists():
            out["documents"].append({"pdf": path, "error": "not installed"})
            continue
        doc = pdfium.PdfDocument(path)
        idx = np.linspace(0, len(doc) - 1, min(len(doc), n_pages * 2)).round().astype(int)
        rows, t_pages = [], []
        for pi in dict.fromkeys(idx.tolist()):
            page = doc[pi]
            ref = page.get_textpage().get_text_range()
            if len(ref.strip()) < 200:
                continue
            img = page.render(scale=dpi / 72).to_pil().convert("RGB")
            t0 = time.perf_counter()
            res = extract(ViewInput(f"p{pi}", img, "page", page=pi), "text", ocr)
            t_pages.append(time.perf_counter() - t0)
            lines = sorted(ocr.read(img), key=lambda ln: (ln.box.y0, ln.box.x0))
            ref = _no_leaders(ref)
            c = cer(_no_leaders(res["text"]), ref)
            b = cer(_no_leaders(" ".join(ln.text for ln in lines)), ref)
            turned += bool(res["rotation"])
            rows.append({"page": pi, "cer": round(c, 4), "baseline_cer": round(b, 4),
                         "rotation": res["rotation"]})
            all_cer.append(c)
            all_base.append(b)
            if len(rows) >= n_pages:
                break
        out["documents"].append({"pdf": Path(path).name, "pages": rows,
                                 "mean_cer": _mean([r["cer"] for r in rows]),
                                 "s_per_page": round(float(np.mean(t_pages)), 2)})
    out["mean_cer"] = _mean(all_cer)
    out["baseline_mean_cer_lines_top_to_bottom"] = _mean(all_base)
    out["pages_turned"] = turned
    return out
