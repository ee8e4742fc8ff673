"""A second, closer look at the views a follow-up count or relation question asks about.

The index pass runs the COCO detector at a small input side (416 px: its cost is paid for
every view ingested). A question such as "how many cups are in the first one?" concerns a
few views only, so the follow-up layer looks at those again at a larger side (640 px by
default), where small objects get more pixels, and answers from the closer look's boxes in
place of the index's: on the objects bench's composites, asked through the session, the
exact count goes from 0.300 to 0.467 and relations from 0.15 to 0.24 (`glimpse bench --only
objects`: followups; the detector alone, more_pixels_lever: 0.308 -> 0.475, 0.15 -> 0.23).
The index's and the closer look's boxes together (one NMS) do no better there (0.483 / 0.25)
and worse on photos: the index pass's low-scored partial boxes stay (four astronauts in a
row counted 7 instead of 4), so the closer look replaces, and the answer's
step says what the index had stored beside what the closer look found.

Faces, HOG people (where the detector was off), colour shapes and everything else stored
stay as they are. Where the index relabelled a detector box by the classifier's evidence (a
"dog" box on a photo the classifier calls a cat), the same box of the closer look gets the
same label, so the relabel is not lost.
"""

from __future__ import annotations

import copy
from dataclasses import replace

from indexer.domain import DetectedObject
from indexer.models.cpu.detectors import iou
from indexer.models.cpu.objects import SOURCE
from indexer.reasoning.refs import ResultRef

_RELABELLED = f"{SOURCE}+classifier"


def with_closer_look(ref: ResultRef, found: list[DetectedObject], side: int) -> ResultRef:
    """`ref` with its COCO detector boxes replaced by those of a look at `side` px (`found`,
    in the view's pixels); each records `extra["closer_look_side"]`. Nothing of `ref` is
    changed (it may be cached)."""
    d = ref.view.description
    stored = [o for o in d.objects if o.source in (SOURCE, _RELABELLED)]
    relabelled = [o for o in stored if o.source == _RELABELLED]
    keep = [o for o in d.objects if o.source not in (SOURCE, _RELABELLED)]
    new: list[DetectedObject] = []
    for o in found:
        o = DetectedObject(o.label, o.score, o.box, o.source or SOURCE,
                           {**copy.deepcopy(o.extra), "closer_look_side": side})
        same = [r for r in relabelled if r.extra.get("detector_label") == o.label
                and iou(r.box, o.box) >= 0.5]
        if same:
            r = max(same, key=lambda r: iou(r.box, o.box))
            o.extra.update(r.extra)
            o.extra["detector_label"], o.extra["detector_score"] = o.label, o.score
            o.label, o.source = r.label, r.source
        new.append(o)
    desc = replace(d, objects=keep + new,
                   extra={**d.extra, "closer_look": {"side": side, "index_boxes": len(stored),
                                                     "closer_boxes": len(new)}})
    return replace(ref, view=replace(ref.view, description=desc))
