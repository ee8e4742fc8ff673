"""The embedded default backend: small pretrained models that run on a laptop CPU, offline.

- EfficientNet-Lite0 (ImageNet-1k): class probabilities -> concept tags, and 1280-d pooled
  features -> the `visual` space (image -> image).
- all-MiniLM-L6-v2: the 384-d `semantic` space for text; images enter it by ConSE over the
  classifier's top classes (see conse.py), fused with their OCR text and detected faces.
- RapidOCR (gated), a bundled face cascade, measured colours.
`answer` and `extract` are not implemented here yet.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexer.domain import (
    Answer,
    Box,
    Description,
    DetectedObject,
    OcrLine,
    Tag,
    Turn,
    ViewEncoding,
    ViewInput,
)
from indexer.models.base import l2_normalize
from indexer.models.cpu import conse
from indexer.models.cpu.caption import build_caption
from indexer.models.cpu.classifier import Classifier
from indexer.models.cpu.colors import colour_shapes, measure_colors
from indexer.models.cpu.detectors import FaceDetector, PeopleDetector
from indexer.models.cpu.objects import ObjectDetector
from indexer.models.cpu.objects_fuse import fuse_objects, object_tags
from indexer.models.cpu.ocr import OcrEngine, likely_text
from indexer.models.cpu.text import TextEncoder
from indexer.reasoning.counting import object_match, query_objects
from indexer.settings import ModelSettings

log = logging.getLogger(__name__)

# v2: class texts "a photo of a X." mixed with their WordNet hypernyms (0.6), chosen on the
# tuxpaint tuning half (text->image mAP 0.35 -> 0.49 there; see README "Search quality")
MODEL_ID = "cpu-effnetlite0-minilm-v2"
DEFAULT_CONSE = conse.ConseConfig(prompts=("photo",), hypernym_weight=0.6)
# Concept evidence in `score`: the classifier's probability mass on classes whose text means
# what the query says, each class weighted by clip((cos - CONCEPT_LO) / CONCEPT_SPAN, 0, 1).
# Tuned on the tuxpaint tuning half (P@10 / mAP plateau around 0.45 / 0.3).
CONCEPT_LO, CONCEPT_SPAN = 0.45, 0.3
# Image queries: the cosine in the visual space (EfficientNet pooled features) mapped to
# P(same concept) by a logistic fitted on the tuxpaint tuning half (scripts in the bench).
VISUAL_CALIBRATION = (13.4, 0.53)  # (slope, midpoint)
OCR_WEIGHT = 0.6  # weight of the OCR-text vector against the ConSE vector (unit norms)
PERSON_WEIGHT = 0.5  # weight of "a photo of a person" per detected face confidence
PERSON_TEXT = "a photo of a person, a human face."
OBJECT_WEIGHT = 0.5  # weight of "a photo of a <COCO label>." per detected object score
OBJECT_EVIDENCE = 0.8  # weight of the named objects' best box scores in `score`
CONTRADICTED = 0.6  # relevance factor per count or relation the boxes contradict
TOP_TAGS = 5
# every per-view analyser (OCR at <= 640 px detection, faces at 320, people at 400, colours)
# works on one copy of at most this side, made once: a 12 MP photo is resized once, not six
# times, and OCR recognition still crops its lines from a 1280 px image
WORK_SIDE = 1280
_WORD = re.compile(r"[a-z0-9]+")
_PERSON_WORDS = frozenset({
    "person", "people", "man", "men", "woman", "women", "face", "faces", "human", "humans",
    "boy", "girl", "child", "portrait", "astronaut", "someone", "selfie"})


@dataclass
class _Analysers:
    ocr: OcrEngine
    faces: FaceDetector
    people: PeopleDetector
    objects: ObjectDetector | None


class CpuModel:
    model_id = MODEL_ID
    generative = False
    spaces = {"semantic": 384, "visual": 1280}

    def __init__(self, settings: ModelSettings | None = None,
                 conse_config: conse.ConseConfig = DEFAULT_CONSE) -> None:
        self.settings = settings or ModelSettings()
        self.cfg = conse_config
        cache = Path(self.settings.cache_dir).expanduser() if self.settings.cache_dir else None
        self.cache_dir = cache
        threads = max(1, self.settings.torch_threads)
        self.classifier = Classifier(threads=threads, cache_dir=cache)
        self.text = TextEncoder(threads=threads, cache_dir=cache)
        self.ocr = OcrEngine(threads=threads)
        self.faces = FaceDetector()
        self.people = PeopleDetector()
        self.objects = self._object_detector()
        self._closer: ObjectDetector | None = None  # built on the first look_closer
        self.crops: tuple[str, ...] = ("full",)
        # decides, per view, whether OCR runs in mode "gated" (a seam for better gates; the
        # bench swaps in an oracle to measure what a perfect gate would be worth)
        self.text_gate: Callable[[Image.Image], bool] = likely_text
        self._class_emb: np.ndarray | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None
        self._shared_taken = False
        self.timings: dict[str, float] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def load(self) -> None:
        if self._class_emb is not None:
            return
        with self._lock:
            if self._class_emb is not None:
                return
            import torch

            torch.set_num_threads(max(1, self.settings.torch_threads))
            t0 = time.perf_counter()
            self.classifier.load()
            self.text.load()
            self._class_emb = conse.class_embeddings(self.text, self.cfg, self.cache_dir)
            if self.settings.ocr != "off":
                self.ocr.load()
            self.faces.load()
            self.people.load()
            if self.objects is not None:
                self.objects.load()
            log.info("cpu model loaded in %.1fs", time.perf_counter() - t0)

    @property
    def class_emb(self) -> np.ndarray:
        self.load()
        assert self._class_emb is not None
        return self._class_emb

    def _tick(self, stage: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (t1 - t0)
        return t1

    # -- encoding --------------------------------------------------------------------------
    def _classify(self, views: Sequence[ViewInput]) -> tuple[np.ndarray, np.ndarray]:
        probs_all, feats_all = [], []
        bs = max(1, self.settings.batch_size)
        for s in range(0, len(views), bs):
            p, f = self.classifier.run([v.image for v in views[s : s + bs]], self.crops)
            probs_all.append(p)
            feats_all.append(f)
        return np.concatenate(probs_all), np.concatenate(feats_all)

    def encode_views(self, views: Sequence[ViewInput]) -> list[ViewEncoding]:
        self.load()
        if not views:
            return []
        t = time.perf_counter()
        if self.settings.view_workers > 1:
            # the per-view detectors (OCR, faces, people, colours) run in worker threads
            # while the classifier batch runs here: onnxruntime, OpenCV and torch release
            # the GIL, so a 2-core machine does both at once
            futures = [self._pool().submit(self._analyse, v) for v in views]
            probs, feats = self._classify(views)
            t = self._tick("classifier", t)
            analysed = [f.result() for f in futures]
        else:
            probs, feats = self._classify(views)
            t = self._tick("classifier", t)
            analysed = [self._analyse(v) for v in views]
        sem = conse.semantic_vectors(probs, self.class_emb, self.cfg)
        descs: list[Description] = []
        texts: list[str] = []
        for i, (view, (ocr_lines, objects, colors, ms)) in enumerate(
                zip(views, analysed, strict=True)):
            for stage, x in ms.items():
                self.timings[stage] = self.timings.get(stage, 0.0) + x
            objects = fuse_objects(objects, probs[i], view.image.size)
            desc = self._description(probs[i], ocr_lines, objects, colors,
                                     size=view.image.size, kind=view.kind)
            descs.append(desc)
            texts.append(" ".join(x for x in (desc.ocr_text, view.text_layer or "") if x.strip()))
        text_vecs = self._text_vectors(texts)
        out: list[ViewEncoding] = []
        for i, desc in enumerate(descs):
            faces = [o for o in desc.objects if o.label == "face"]
            vec = self._with_objects(self._fuse(sem[i], text_vecs[i], faces), desc.objects)
            out.append(ViewEncoding(desc, {"semantic": vec, "visual": l2_normalize(feats[i])}))
        self._tick("text", t)
        return out

    def close(self) -> None:
        """Stop the per-view worker threads (and with them their OCR and detector
        instances); the model stays usable and starts new threads when next needed."""
        with self._lock:
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                # each worker builds its own OCR and detector instances as it starts
                self._executor = ThreadPoolExecutor(self.settings.view_workers,
                                                    initializer=self._analysers,
                                                    thread_name_prefix="glimpse-view")
            return self._executor

    def _analysers(self) -> _Analysers:
        """OCR and detector instances of the calling thread: RapidOCR and OpenCV's cascade
        and HOG objects are not safe to share across threads."""
        a: _Analysers | None = getattr(self._local, "a", None)
        if a is None:
            with self._lock:  # the first thread reuses the instances load() warmed up
                if not self._shared_taken:
                    self._shared_taken = True
                    a = _Analysers(self.ocr, self.faces, self.people, self.objects)
            if a is None:
                # the onnxruntime session of the object detector is thread-safe: shared
                a = _Analysers(OcrEngine(threads=1), FaceDetector(), PeopleDetector(),
                               self.objects)
                if self.settings.ocr != "off":  # load now, not inside the first view's timing
                    a.ocr.load()
                a.faces.load()
                a.people.load()
            self._local.a = a
        return a

    def _analyse(
        self, view: ViewInput
    ) -> tuple[list[OcrLine], list[DetectedObject], dict[str, Any], dict[str, float]]:
        a = self._analysers()
        ms: dict[str, float] = {}
        t0 = time.perf_counter()
        img, scale = working_copy(view.image, WORK_SIDE)
        mode = self.settings.ocr
        lines: list[OcrLine] = []
        if mode == "on" or (mode == "gated" and self.text_gate(img)):
            lines = a.ocr.read(img)
        t1 = time.perf_counter()
        coco = a.objects is not None and a.objects.available
        objects = faces_outside_text(a.faces.detect(img), lines)
        if not coco:  # the COCO detector's person class replaces HOG (see PeopleDetector)
            objects += a.people.detect(img)
        t2 = time.perf_counter()
        if coco:
            assert a.objects is not None
            objects += a.objects.detect(img)
        t_obj = time.perf_counter()
        colors = measure_colors(img)
        objects += colour_shapes(img)
        t3 = time.perf_counter()
        if scale != 1.0:  # boxes on the view's own pixels
            lines = [OcrLine(x.text, x.score, _unscale(x.box, scale)) for x in lines]
            objects = [DetectedObject(o.label, o.score, _unscale(o.box, scale), o.source,
                                      o.extra) for o in objects]
        ms["ocr"], ms["detectors"], ms["objects"] = t1 - t0, t2 - t1, t_obj - t2
        ms["colors"] = t3 - t_obj
        return lines, objects, colors, ms

    def _text_vectors(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The text-space vector of each view's own text (None where it has none), in one
        batched embedding call."""
        idx = [i for i, x in enumerate(texts) if x.strip()]
        out: list[np.ndarray | None] = [None] * len(texts)
        if idx:
            vecs = self.text.embed([f"text: {texts[i][:500]}" for i in idx], cache=False)
            for k, i in enumerate(idx):
                out[i] = vecs[k]
        return out

    def _fuse(self, conse_vec: np.ndarray, text_vec: np.ndarray | None,
              faces: list[DetectedObject]) -> np.ndarray:
        v = conse_vec.astype(np.float32).copy()
        if text_vec is not None:
            v += OCR_WEIGHT * text_vec
        if faces:
            v += PERSON_WEIGHT * max(f.score for f in faces) * self.text.embed([PERSON_TEXT])[0]
        return l2_normalize(v)

    def _object_detector(self) -> ObjectDetector | None:
        if self.settings.objects == "off":
            return None
        return ObjectDetector(side=self.settings.objects_side,
                              min_score=self.settings.objects_min_score,
                              cache_dir=self.cache_dir, threads=1)

    @property
    def index_side(self) -> int:
        """The detector input side of the index pass (the boxes stored with each view)."""
        return self.settings.objects_side

    @property
    def closer_side(self) -> int:
        """The detector input side of a second look at a view (0: none): larger than the
        index pass (objects_side), so small objects get more pixels."""
        side = self.settings.objects_closer_side
        if self.objects is None or side <= self.settings.objects_side:
            return 0
        return side

    def look_closer(self, image: Image.Image) -> list[DetectedObject] | None:
        """COCO boxes of `image` from the detector at `closer_side` (None: no second look:
        the detector is off, unavailable, or the setting is 0). A follow-up count or relation
        question is answered from these instead of the index pass's boxes: at 640 px the
        composites' exact count is 0.475 vs 0.308 at 416 (bench objects, more_pixels_lever),
        at ~3x the cost, paid once per view a question asks about, not at ingest."""
        side = self.closer_side
        if not side:
            return None
        with self._lock:
            if self._closer is None:
                self._closer = ObjectDetector(side=side,
                                              min_score=self.settings.objects_min_score,
                                              cache_dir=self.cache_dir, threads=1)
            det = self._closer
        if not det.available:
            return None
        img, scale = working_copy(image, WORK_SIDE)
        objs = det.detect(img)
        if scale != 1.0:
            objs = [DetectedObject(o.label, o.score, _unscale(o.box, scale), o.source, o.extra)
                    for o in objs]
        return objs

    def _with_objects(self, vec: np.ndarray, objects: list[DetectedObject]) -> np.ndarray:
        """Detected COCO objects join the semantic (ConSE) vector: each label's text vector
        weighted by OBJECT_WEIGHT x its best score, like detected people above."""
        tags = object_tags(objects)
        if not tags:
            return vec
        tv = self.text.embed([f"a photo of a {t.label}." for t in tags])
        w = np.asarray([OBJECT_WEIGHT * t.score for t in tags], np.float32)
        return l2_normalize(vec + (w[:, None] * tv).sum(0))

    def _description(self, probs: np.ndarray, ocr_lines: list[OcrLine],
                     objects: list[DetectedObject], colors: dict[str, Any], *,
                     size: tuple[int, int] | None = None, kind: str = "image") -> Description:
        data = conse.class_data()
        top = np.argsort(-probs)[:TOP_TAGS]
        tags = [Tag(data.names[k], round(float(probs[k]), 4), "classifier") for k in top
                if probs[k] >= 0.01]
        tags += [Tag(name, round(p, 4), "hierarchy") for name, p in conse.hierarchy_tags(probs)]
        if any(o.label in ("face", "person") for o in objects):
            tags.append(Tag("person", max(o.score for o in objects
                                          if o.label in ("face", "person")), "detector"))
        seen = {t.label for t in tags if t.source == "detector"}
        tags += [t for t in object_tags(objects) if t.label not in seen]
        caption = build_caption(tags, objects, ocr_lines, colors, size=size, kind=kind)
        extra = {
            "top_classes": [[int(k), round(float(probs[k]), 5)] for k in np.argsort(-probs)[:10]],
            "model_id": self.model_id,
        }
        return Description(caption=caption, tags=tags, ocr=ocr_lines, objects=objects,
                           colors=colors, extra=extra)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        return self.text.embed(list(texts))

    def embed_query_images(self, views: Sequence[ViewInput]) -> list[dict[str, np.ndarray]]:
        self.load()
        if not views:
            return []
        probs, feats = self._classify(views)
        sem = conse.semantic_vectors(probs, self.class_emb, self.cfg)
        return [{"semantic": sem[i], "visual": l2_normalize(feats[i])} for i in range(len(views))]

    def describe(self, view: ViewInput) -> Description:
        return self.encode_views([view])[0].description

    # -- reranking -------------------------------------------------------------------------
    def _semantic_from_description(self, d: Description) -> np.ndarray | None:
        top = d.extra.get("top_classes")
        if not top:
            return None
        probs = np.zeros((1, len(conse.class_data().names)), np.float32)
        for k, p in top:
            probs[0, int(k)] = float(p)
        v = conse.semantic_vectors(probs, self.class_emb, self.cfg)[0]
        faces = [o for o in d.objects if o.label == "face"]
        return self._with_objects(self._fuse(v, self._text_vectors([d.ocr_text])[0], faces),
                                  d.objects)

    def concept_weights(self, query: str) -> np.ndarray:
        """float32[1000]: how much each ImageNet class means what the query says (0..1),
        from the cosine of the query to the class's text (its prompt mixed with its
        hypernyms, so "a bird" reaches every bird class)."""
        q = self.text.embed([query])[0]
        sims = self.class_emb @ q
        return np.clip((sims - CONCEPT_LO) / CONCEPT_SPAN, 0.0, 1.0).astype(np.float32)

    def score(self, query: str, view: ViewInput, description: Description | None) -> float:
        """Noisy-or of calibrated evidence: the classifier's probability mass on classes that
        mean the query (concept), semantic similarity, OCR terms and detected people."""
        self.load()
        d = description or self.describe(view)
        q = self.text.embed([query])[0]
        vec = self._semantic_from_description(d)
        if vec is None:
            vec = self.encode_views([view])[0].vectors["semantic"]
        sem = float(np.dot(q, vec))
        sem_c = float(np.clip((sem - 0.25) / 0.35, 0.0, 1.0))
        top = d.extra.get("top_classes") or []
        concept = 0.0
        if top:
            w = self.concept_weights(query)
            concept = float(min(1.0, sum(float(p) * float(w[int(k)]) for k, p in top)))
        words = [w for w in _WORD.findall(query.lower()) if len(w) >= 3]
        ocr_text = d.ocr_text.lower()
        ocr = (sum(w in ocr_text for w in words) / len(words)) if words and ocr_text else 0.0
        people = 0.0
        if _PERSON_WORDS.intersection(_WORD.findall(query.lower())):
            people = max((o.score for o in d.objects if o.label == "face"), default=0.0)
        # boxes of the objects the query names; a count or relation the boxes contradict
        # ("two dogs" and one dog boxed) ranks the view lower
        om = object_match(query_objects(query), d)
        boxed = om.evidence if om is not None else 0.0
        miss = ((1 - 0.3 * sem_c) * (1 - concept) * (1 - 0.9 * ocr) * (1 - 0.7 * people)
                * (1 - OBJECT_EVIDENCE * boxed))
        rel = 1.0 - miss
        if om is not None and om.contradictions:
            rel *= CONTRADICTED ** om.contradictions
        return float(np.clip(rel, 0.0, 1.0))

    def similarity_relevance(self, space: str, sims: Sequence[float]) -> list[float]:
        """Calibrated relevance of image-query cosines: `visual` by the logistic fitted on
        the tuning half; `semantic` (text space) by the same clip as `score`."""
        x = np.asarray(sims, dtype=np.float64)
        if space == "visual":
            a, b = VISUAL_CALIBRATION
            return (1.0 / (1.0 + np.exp(-a * (x - b)))).tolist()  # type: ignore[no-any-return]
        return np.clip((x - 0.25) / 0.35, 0.0, 1.0).tolist()  # type: ignore[no-any-return]

    # -- not here yet ----------------------------------------------------------------------
    def answer(self, question: str, views: Sequence[ViewInput],
               descriptions: Sequence[Description], history: Sequence[Turn] = ()) -> Answer:
        """Answer from the stored evidence of the given views only (no generative model):
        the same reasoning the session service uses, with views numbered in order."""
        from indexer.reasoning.qa import EvidenceQA
        from indexer.reasoning.refs import ResultRef, resolve
        from indexer.stores.catalog import ViewRecord

        refs = [ResultRef(i, v.view_id, "video" if v.kind == "frame" else "image",
                          ViewRecord(v.view_id, v.view_id, "", i, v.kind, v.t_start, v.t_end,
                                     v.page, v.image.width, v.image.height, None, d))
                for i, (v, d) in enumerate(zip(views, descriptions, strict=True))]
        res = resolve(question, refs)
        return EvidenceQA(embed=self.embed_texts).answer(
            question, [refs[i] for i in res.indices], res)

    def extract(self, view: ViewInput, kind: str) -> dict[str, Any]:
        """Tables, key-values, chart data or text from the document pipeline (OCR + layout)."""
        from indexer.documents.extract import extract

        return extract(view, kind, self.ocr)


def faces_outside_text(faces: list[DetectedObject], lines: Sequence[OcrLine]
                       ) -> list[DetectedObject]:
    """Faces whose box centre lies on a line of text the OCR read are letters ("O", "S"),
    not faces: BlazeFace scored one in "OPEN 24 HOURS" at 0.65."""
    if not lines:
        return faces
    out = []
    for f in faces:
        cx, cy = f.box.center
        if not any(ln.box.x0 <= cx <= ln.box.x1 and ln.box.y0 <= cy <= ln.box.y1
                   for ln in lines):
            out.append(f)
    return out


def working_copy(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    """(image with its longer side at most `side`, the scale applied); RGB either way."""
    w, h = image.size
    s = side / max(w, h)
    im = image if image.mode == "RGB" else image.convert("RGB")
    if s >= 1.0:
        return im, 1.0
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), s


def _unscale(b: Box, s: float) -> Box:
    return Box(b.x0 / s, b.y0 / s, b.x1 / s, b.y1 / s)


__all__ = ["MODEL_ID", "CpuModel"]
