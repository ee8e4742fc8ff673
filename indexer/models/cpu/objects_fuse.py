"""Fuse the detectors with each other and with the classifier, keeping every source.

- CenterNet and HOG both find whole people: a HOG box that overlaps a CenterNet person
  (IoU > 0.5) is the same person; the CenterNet box stays, the HOG one is recorded in its
  extra["also"] (so the stored record keeps both sources).
- The detector and the ImageNet classifier sometimes disagree about *what* an object is
  (CenterNet calls skimage's cat photo "dog" at 0.37 while the classifier says "tabby cat"
  at 0.6). Where a detected object covers a large part of the view (>= 30 %: the classifier
  sees the whole image, so its evidence is about the dominant object) and the classifier's top
  class names a different label of the same confusable group (animals; road vehicles;
  drinking vessels) with more confidence than the detector, the object is relabelled. The
  detector's own label and score and the classifier's class and probability are kept in
  extra, and source becomes "centernet+classifier".
"""

from __future__ import annotations

import numpy as np

from indexer.domain import DetectedObject, Tag
from indexer.models.cpu.objects import COCO_LABELS, SOURCE, iou

GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
               "giraffe", "teddy bear"}),
    frozenset({"car", "truck", "bus", "train", "motorcycle", "bicycle"}),
    frozenset({"cup", "bowl", "wine glass", "bottle", "vase"}),
)
# ImageNet names/hypernyms that mean a COCO label under another word
SYNONYMS = {"domestic cat": "cat", "mug": "cup", "coffee mug": "cup", "cattle": "cow",
            "bovine": "cow", "goblet": "wine glass", "sofa": "couch", "motor scooter":
            "motorcycle", "moped": "motorcycle", "bicycle": "bicycle", "bear": "bear",
            "pickup": "truck", "trailer truck": "truck", "minibus": "bus", "school bus": "bus",
            "trolleybus": "bus", "passenger car": "train", "electric locomotive": "train",
            "steam locomotive": "train", "teddy": "teddy bear", "pop bottle": "bottle",
            "beer bottle": "bottle", "wine bottle": "bottle", "water bottle": "bottle"}
MIN_AREA = 0.30
MIN_CLASSIFIER = 0.3
_COCO = frozenset(COCO_LABELS)


def coco_label_of_class(k: int) -> str | None:
    """The COCO label an ImageNet class is an instance of, from its name and hypernyms."""
    from indexer.models.cpu import conse

    data = conse.class_data()
    for name in [data.names[k], *data.chains[k]]:
        n = name.lower()
        if n in SYNONYMS:
            return SYNONYMS[n]
        if n in _COCO:
            return n
    return None


def _group(label: str) -> frozenset[str] | None:
    return next((g for g in GROUPS if label in g), None)


def fuse_objects(objects: list[DetectedObject], probs: np.ndarray | None,
                 size: tuple[int, int]) -> list[DetectedObject]:
    w, h = size
    area = float(max(1, w) * max(1, h))
    cn_people = [o for o in objects if o.source == SOURCE and o.label == "person"]
    out: list[DetectedObject] = []
    for o in objects:
        if o.label == "person" and o.source != SOURCE and cn_people:
            same = max(cn_people, key=lambda p: iou(p.box, o.box))
            if iou(same.box, o.box) > 0.5:
                also = same.extra.setdefault("also", [])
                also.append([o.label, round(o.score, 3), o.source or "hog-person"])
                continue
        out.append(o)
    if probs is None or not len(probs):
        return out
    k = int(np.argmax(probs))
    p = float(probs[k])
    cls_label = coco_label_of_class(k)
    if cls_label is None or p < MIN_CLASSIFIER:
        return out
    from indexer.models.cpu import conse

    name = conse.class_data().names[k]
    group = _group(cls_label)
    for o in out:
        if o.source != SOURCE or o.label == cls_label or o.box.area / area < MIN_AREA:
            continue
        if group is None or o.label not in group or p <= o.score:
            continue
        o.extra.update({"detector_label": o.label, "detector_score": o.score,
                        "classifier_class": name, "classifier_score": round(p, 4)})
        o.label, o.source = cls_label, f"{SOURCE}+classifier"
    return out


def object_tags(objects: list[DetectedObject]) -> list[Tag]:
    """One "detector" tag per COCO label seen (best score), beside the classifier's tags."""
    best: dict[str, float] = {}
    for o in objects:
        if o.source.startswith(SOURCE):
            best[o.label] = max(best.get(o.label, 0.0), o.score)
    return [Tag(label, round(s, 4), "detector")
            for label, s in sorted(best.items(), key=lambda kv: -kv[1])]
