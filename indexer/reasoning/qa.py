"""Answers to follow-up questions from stored evidence only (the cpu backend's `answer`).

Supported: is there X / which of these has X; what objects; how many X (boxes; per shot in a
video); is X left of / above / next to / on Y (boxes); the largest object; what does the text
say; what colour is the main object or the background; where is X; when in a video (shot
times); compare results. Anything else gets an honest "cannot tell from this
evidence" with the evidence that exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from indexer.domain import Answer, AnswerBox, Description, Step
from indexer.reasoning.counting import MIN_BOX, boxes_of, detector_label
from indexer.reasoning.evidence import (
    Match,
    canonical,
    find_concept,
    holds,
    position_words,
    relation,
    singular,
)
from indexer.reasoning.refs import Resolution, ResultRef, strip_references
from indexer.stores.catalog import ViewRecord
from indexer.temporal import fmt_t

EmbedFn = Callable[[Sequence[str]], np.ndarray]

_ART = r"(?:a |an |the |any |some )?"
_CONCEPT = r"([\w' -]+?)"
_END = r"\s*(?:in (?:it|them|these|this|that|the \w+(?: \w+)?)|on (?:it|them|screen)|here|there|" \
       r"visible|at all|please)?\s*[?.!]*$"


_COUNT_Q = re.compile(rf"^how many {_CONCEPT}(?: are| is| do you see| can you see| there|"
                      rf" appear| in| on|\?|$)")
_SCENE_Q = re.compile(r"times does the scene|scene changes?|cuts?\b")
_RELATION_Q = re.compile(r"^(?:is|are) (?:the |a |an |all (?:the )?|both )?([\w' -]+?) (?:to the |"
                         r"on the )?(left of|right of|above|below|under|over|next to|beside|"
                         r"on top of|on) (?:the |a |an )?([\w' -]+?)\s*(?:in (?:it|this|that|"
                         r"the \w+(?: \w+)?))?\s*[?.!]*$")


def _counted(m: re.Match[str]) -> str:
    """The noun phrase a _COUNT_Q match counts ("cups" of "how many cups are there")."""
    return m.group(1).split(" are")[0].strip()


def _normalise(question: str) -> str:
    q = strip_references(question.strip().lower())
    if ":" in q:  # "the one with the sign: how many people are in it?"
        q = q.split(":", 1)[1].strip()
    return q


def box_labels(question: str) -> set[str]:
    """The COCO detector labels a count or relation question is answered from ("how many
    cups ...?" -> {"cup"}; "is the person left of the bicycle?" -> {"person", "bicycle"});
    empty for any other question. Faces are not COCO labels. The follow-up layer looks at
    these results again with a larger detector input before answering (indexer/sessions)."""
    q = _normalise(question)
    names: list[str] = []
    if (m := _RELATION_Q.search(q)) is not None:
        names = [m.group(1).strip(), m.group(3).strip()]
    elif (m := _COUNT_Q.search(q)) is not None and not _SCENE_Q.search(q):
        raw = _counted(m)
        names = [raw, canonical(raw)]
    out = {lab for n in names if (lab := detector_label(n)) is not None}
    return out - {"face"}


def _name(r: ResultRef) -> str:
    return f"result {r.index + 1}"


def _fmt(x: float) -> str:
    return f"{x:.2f}"


class EvidenceQA:
    def __init__(self, embed: EmbedFn | None = None) -> None:
        self.embed = embed

    def answer(self, question: str, targets: Sequence[ResultRef], res: Resolution) -> Answer:
        q = _normalise(question)
        if not targets:
            return Answer("There are no results to answer about.", [], [], [])
        for handler in (self._temporal, self._relation, self._count, self._largest, self._text,
                        self._colour, self._where, self._compare, self._objects,
                        self._presence):
            got = handler(q, targets, res)
            if got is not None:
                return got
        return self._cannot_tell(targets)

    # -- question kinds -------------------------------------------------------------------
    def _presence(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        m = (re.search(rf"^(?:is|are) there {_ART}{_CONCEPT}{_END}", q)
             or re.search(rf"^(?:does|do) (?:it|they|this|that|these|the \w+|any of (?:them|these)"
                          rf"|(?:the )?\w+ (?:one|result))\s+(?:show|have|contain|include|"
                          rf"feature|depict)s? {_ART}{_CONCEPT}{_END}", q)
             or re.search(rf"^which (?:of (?:these|them|the results) |one |ones |results? |"
                          rf"images? |photos? |videos? )?(?:has|have|shows?|contains?|includes?|"
                          rf"features?|with) {_ART}{_CONCEPT}{_END}", q)
             or re.search(rf"^(?:can you see|do you see|is it|is this|is that) {_ART}{_CONCEPT}"
                          rf"{_END}", q))
        if not m:
            return None
        concept = m.group(m.re.groups).strip()
        steps: list[Step] = []
        boxes: list[AnswerBox] = []
        yes: list[ResultRef] = []
        for r in targets:
            found = self._find(r, concept)
            if found:
                yes.append(r)
                best = sorted(found, key=lambda x: -x[1].score)[:2]
                steps.append(Step(
                    f"{_name(r)}: " + "; ".join(
                        f"{mm.kind} '{mm.label}' ({_fmt(mm.score)})" for _, mm in best) + ".",
                    [mm.as_evidence(vid) for vid, mm in best]))
                boxes += [AnswerBox(vid, mm.label, mm.box) for vid, mm in best if mm.box]
            else:
                steps.append(Step(f"{_name(r)}: no tag, object or text matches '{concept}'.",
                                  [{"type": "absent", "view_id": r.view.id, "label": concept}]))
        if len(targets) == 1:
            text = (f"Yes — {_name(targets[0])} shows evidence of '{concept}'." if yes else
                    f"No evidence of '{concept}' in {_name(targets[0])}.")
        elif yes:
            text = (f"{', '.join(_name(r).capitalize() for r in yes)} "
                    f"{'has' if len(yes) == 1 else 'have'} evidence of '{concept}'.")
        else:
            text = f"None of the {len(targets)} results shows evidence of '{concept}'."
        return Answer(text, steps, boxes, [r.view.id for r in (yes or targets)])

    def _count(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        m = _COUNT_Q.search(q)
        if not m or _SCENE_Q.search(q):
            return None
        raw = _counted(m)
        concept = canonical(raw)
        label = detector_label(raw) or detector_label(concept)
        steps: list[Step] = []
        boxes: list[AnswerBox] = []
        parts: list[str] = []
        for r in targets:
            shots = [v for v in r.frames if v.kind == "frame"] if r.frames else []
            if label is not None and len(shots) > 1:  # a video: the count of every shot
                part, st, bx = self._count_shots(r, shots, label)
                parts.append(part)
                steps += st
                boxes += bx
                continue
            d = r.view.description
            objs = boxes_of(d, label) if label is not None else [
                o for o in d.objects if canonical(o.label) == concept]  # "red squares"
            if label == "person" and not objs:
                faces = boxes_of(d, "face")
                if faces:
                    steps.append(Step(
                        f"{_name(r)}: no whole person detected, but {len(faces)} face"
                        f"{'s' if len(faces) != 1 else ''} detected.",
                        [{"type": "object", "view_id": r.view.id, "label": "face",
                          "score": round(o.score, 3), "box": o.box.as_list()} for o in faces]))
                    boxes += [AnswerBox(r.view.id, "face", o.box) for o in faces]
                    parts.append(f"at least {len(faces)} in {_name(r)} (from faces)")
                    continue
            tags = find_concept(d, concept) if not objs else []
            if label is not None and not objs and tags:
                # no box, yet the classifier (or the text) names it: the detector missed
                # what is there (it finds ~6 in 10 drawn objects), so 0 would be a false count
                best = max(tags, key=lambda t: t.score)
                steps.append(Step(
                    f"{_name(r)}: the detector found no '{label}' box, but "
                    f"'{best.label}' ({_fmt(best.score)}) is in the stored evidence: the "
                    "detector missed it, so no count.",
                    [{"type": "count", "view_id": r.view.id, "label": label, "count": 0},
                     best.as_evidence(r.view.id)]))
                parts.append(f"present in {_name(r)} but not boxed, count unknown")
                continue
            if label is not None or objs:
                # a class the detectors know: the boxes are the count (0 is an answer)
                steps.append(Step(
                    f"{_name(r)}: the detector found {len(objs)} '{label or concept}' box"
                    f"{'es' if len(objs) != 1 else ''}.",
                    [{"type": "object", "view_id": r.view.id, "label": o.label,
                      "score": round(o.score, 3), "box": o.box.as_list(),
                      "source": o.source or "detector"} for o in objs]
                    or [{"type": "count", "view_id": r.view.id, "label": label or concept,
                         "count": 0}]))
                boxes += [AnswerBox(r.view.id, o.label, o.box) for o in objs]
                parts.append(f"{len(objs)} in {_name(r)}")
                continue
            if tags:
                best = max(tags, key=lambda t: t.score)
                steps.append(Step(
                    f"{_name(r)}: the classifier tags '{best.label}' ({_fmt(best.score)}) but "
                    "gives no count or boxes.", [best.as_evidence(r.view.id)]))
                parts.append(f"present in {_name(r)}, count unknown")
            else:
                steps.append(Step(
                    f"{_name(r)}: no detector knows '{concept}' and nothing stored names it.",
                    [{"type": "absent", "view_id": r.view.id, "label": concept}]))
                parts.append(f"cannot tell for {_name(r)}")
        text = f"'{label or concept}': " + "; ".join(parts) + "."
        if label is None and all(p.startswith("cannot tell") for p in parts):
            text = (f"I cannot tell how many '{concept}' there are: the detectors do not know "
                    "it and no stored tag names it.")
        return Answer(text, steps, boxes, [r.view.id for r in targets])

    def _count_shots(self, r: ResultRef, shots: list[ViewRecord], label: str
                     ) -> tuple[str, list[Step], list[AnswerBox]]:
        """Per-shot counts of one detector label in a video result."""
        counts = []
        ev = []
        boxes = []
        for v in sorted(shots, key=lambda v: float(v.t_start or 0.0)):
            objs = boxes_of(v.description, label)
            counts.append((v, len(objs)))
            ev.append({"type": "count", "view_id": v.id, "label": label, "count": len(objs),
                       "t_start": v.t_start, "t_end": v.t_end})
            boxes += [AnswerBox(v.id, o.label, o.box) for o in objs]
        most = max(n for _, n in counts)
        per = ", ".join(f"{n} at {fmt_t(float(v.t_start or 0.0))}" for v, n in counts)
        step = Step(f"{_name(r)}: '{label}' boxes per shot: {per}.", ev)
        return f"at most {most} in one shot of {_name(r)} ({per})", [step], boxes

    def _largest(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        m = re.search(r"\b(?:the )?(largest|biggest|smallest)(?: (?:object|thing|one))?\b", q)
        if not m or not re.search(r"^(?:what|which|where)\b", q):
            return None
        small = m.group(1) == "smallest"
        steps: list[Step] = []
        boxes: list[AnswerBox] = []
        parts: list[str] = []
        for r in targets:
            objs = [o for o in r.view.description.objects if o.score >= MIN_BOX
                    and o.label != "face"]
            if not objs:
                parts.append(f"no object was boxed in {_name(r)}")
                steps.append(Step(f"{_name(r)}: no boxed object to compare.",
                                  [{"type": "absent", "view_id": r.view.id,
                                    "label": "object"}]))
                continue
            o = (min if small else max)(objs, key=lambda o: o.box.area)
            share = o.box.area / float(max(1, (r.view.width or 1) * (r.view.height or 1)))
            parts.append(f"in {_name(r)} the {m.group(1)} is '{o.label}' "
                         f"({_fmt(share)} of the image)")
            steps.append(Step(
                f"{_name(r)}: of {len(objs)} boxed objects, '{o.label}' has the "
                f"{'smallest' if small else 'largest'} box ({_fmt(share)} of the image).",
                [{"type": "object", "view_id": r.view.id, "label": o.label,
                  "score": round(o.score, 3), "box": o.box.as_list(),
                  "share": round(share, 3)}]))
            boxes.append(AnswerBox(r.view.id, o.label, o.box))
        return Answer("; ".join(parts).capitalize() + ".", steps, boxes,
                      [r.view.id for r in targets])

    def _text(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        if not re.search(r"\b(what does (?:the|it|this|that) (?:text|sign|label|page|document|"
                         r"\w+) say|what (?:is|'s) written|what text|read (?:the|it|me)|which "
                         r"words|what does it say|what do(?:es)? the \w+ say|text (?:say|read))",
                         q):
            return None
        steps: list[Step] = []
        boxes: list[AnswerBox] = []
        said: list[str] = []
        for r in targets:
            lines = [ln for v in (r.frames or [r.view]) for ln in v.description.ocr]
            if lines:
                txt = " / ".join(ln.text for ln in lines[:12])
                said.append(f"{_name(r)} reads: “{txt}”")
                steps.append(Step(f"{_name(r)}: OCR read {len(lines)} line"
                                  f"{'s' if len(lines) != 1 else ''}.",
                                  [{"type": "ocr", "view_id": r.view.id, "label": ln.text,
                                    "score": round(ln.score, 3), "box": ln.box.as_list()}
                                   for ln in lines[:12]]))
                boxes += [AnswerBox(r.view.id, ln.text, ln.box) for ln in lines[:12]
                          if r.view in (r.frames or [r.view])]
            else:
                said.append(f"{_name(r)}: no text was read")
                steps.append(Step(f"{_name(r)}: OCR found no text.",
                                  [{"type": "absent", "view_id": r.view.id, "label": "text"}]))
        return Answer("; ".join(said) + ".", steps, boxes, [r.view.id for r in targets])

    def _colour(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        m = re.search(r"what colou?r (?:is|are) (?:the |its |it)?\s*([\w ]*?)\s*\??$", q)
        if not m and not re.search(r"\bcolou?rs?\b", q):
            return None
        what = (m.group(1).strip() if m else "") or "main object"
        region = "background" if "background" in what or "behind" in what else "main"
        steps: list[Step] = []
        parts: list[str] = []
        shaped = [(r, o) for r in targets for o in r.view.description.objects
                  if what not in ("main object", "object", "it", "main", "background")
                  and re.search(rf"\b{re.escape(singular(what))}s?$", o.label)]
        if shaped:  # a measured colour shape ("blue circle") answers "what colour is the circle"
            for r, o in shaped:
                parts.append(f"in {_name(r)} the {singular(what)} is {o.label.split()[0]}")
                steps.append(Step(f"{_name(r)}: measured shape '{o.label}' at "
                                  f"{o.box.as_list()}.",
                                  [{"type": "object", "view_id": r.view.id, "label": o.label,
                                    "score": round(o.score, 3), "box": o.box.as_list()}]))
            return Answer("; ".join(parts).capitalize() + ".", steps,
                          [AnswerBox(r.view.id, o.label, o.box) for r, o in shaped],
                          [r.view.id for r, _ in shaped])
        for r in targets:
            c = r.view.description.colors.get(region) if r.view.description.colors else None
            if not c:
                parts.append(f"{_name(r)}: no colour measurement stored")
                continue
            share = float(c.get("share", 0.0))
            label = "background" if region == "background" else "main region (centre)"
            parts.append(f"{_name(r)}: the {label} is mostly {c['name']}")
            steps.append(Step(
                f"{_name(r)}: measured {c['name']} covers {_fmt(share)} of the {label}.",
                [{"type": "color", "view_id": r.view.id, "label": c["name"],
                  "score": round(share, 3), "region": region}]))
        note = ""
        if region == "main" and what not in ("main object", "object", "it", "main", ""):
            note = (f" (colour is measured on the image centre, not segmented for "
                    f"'{what}')")
        return Answer("; ".join(parts) + "." + note, steps, [], [r.view.id for r in targets])

    def _relation(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        """"is the person left of the bicycle?", "is the dog on the sofa?" from the boxes."""
        m = _RELATION_Q.search(q)
        if not m:
            return None
        a_name, rel, b_name = m.group(1).strip(), m.group(2), m.group(3).strip()
        rel = {"under": "below", "over": "above", "beside": "next to",
               "on top of": "on"}.get(rel, rel)
        for r in targets:
            a = [x for x in self._find(r, a_name) if x[1].box is not None]
            b = [x for x in self._find(r, b_name) if x[1].box is not None]
            if not a or not b:
                continue
            b_best = max(b, key=lambda x: x[1].score)
            assert b_best[1].box is not None
            oks = [holds(rel, x[1].box, b_best[1].box) for x in a if x[1].box is not None]
            rels = [relation(x[1].box, b_best[1].box) for x in a if x[1].box is not None]
            if rel in ("on", "next to"):  # say what holds, not the coarse direction
                rels = [rel if ok else f"not {rel}" for ok in oks]
            yes = all(oks)
            steps = [Step(f"{_name(r)}: '{x[1].label}' box {x[1].box.as_list() if x[1].box else []}"
                          f" is {rr} '{b_best[1].label}' box {b_best[1].box.as_list()}.",
                          [x[1].as_evidence(x[0]), b_best[1].as_evidence(b_best[0])])
                     for x, rr in zip(a, rels, strict=True)]
            n = len(a)
            subject = f"the {a_name}" if n == 1 else f"all {n} {a_name}"
            text = (f"Yes — {subject} {'is' if n == 1 else 'are'} {rel} the {b_name} in "
                    f"{_name(r)}." if yes else
                    f"No — in {_name(r)}, " + "; ".join(
                        f"'{x[1].label}' is {rr} the {b_name}" for x, rr in zip(a, rels,
                                                                            strict=True)) + ".")
            boxes = [AnswerBox(x[0], x[1].label, x[1].box) for x in [*a, b_best]
                     if x[1].box is not None]
            return Answer(text, steps, boxes, [r.view.id])
        return Answer(f"I cannot tell: I cannot find both '{a_name}' and '{b_name}' with boxes "
                      f"in {', '.join(_name(r) for r in targets)}, so I cannot say where one is "
                      "relative to the other.",
                      [Step(f"{_name(r)}: no boxed '{a_name}' and '{b_name}' in its evidence.",
                            [{"type": "absent", "view_id": r.view.id, "label": a_name}])
                       for r in targets], [], [r.view.id for r in targets])

    def _where(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        m = re.search(rf"^where (?:is|are) {_ART}{_CONCEPT}{_END}", q)
        if not m:
            return None
        concept = m.group(1).strip()
        steps: list[Step] = []
        boxes: list[AnswerBox] = []
        parts: list[str] = []
        for r in targets:
            v = r.view
            found = [x for x in self._find(r, concept) if x[1].box is not None]
            if found:
                vid, mm = max(found, key=lambda x: x[1].score)
                assert mm.box is not None
                pos = position_words(mm.box, float(v.width or 1), float(v.height or 1))
                parts.append(f"in {_name(r)}, '{mm.label}' is at the {pos}")
                steps.append(Step(f"{_name(r)}: {mm.kind} '{mm.label}' box "
                                  f"{mm.box.as_list()} on a {v.width}x{v.height} view.",
                                  [mm.as_evidence(vid) | {"width": v.width,
                                                          "height": v.height}]))
                boxes.append(AnswerBox(vid, mm.label, mm.box))
            elif self._find(r, concept):
                parts.append(f"{_name(r)} has '{concept}' as a whole-image tag, without a box")
                steps.append(Step(f"{_name(r)}: the classifier tags the whole image; it does "
                                  "not localise.", [{"type": "absent", "view_id": v.id,
                                                     "label": "box"}]))
            else:
                parts.append(f"no '{concept}' found in {_name(r)}")
        return Answer("; ".join(parts).capitalize() + ".", steps, boxes,
                      [r.view.id for r in targets])

    def _temporal(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        vids = [r for r in targets if r.media_kind == "video" and r.frames]
        if not vids or not re.search(r"\b(when|before|after|how long|scene|first appear|"
                                     r"happens?|at \d|\d+s\b|\d:\d\d)", q):
            return None
        try:
            from indexer.temporal import answer_temporal
        except ImportError:  # pragma: no cover - the video module ships with the package
            return None
        r = vids[0]
        shots: list[tuple[float, float, Description]] = [
            (float(v.t_start or 0.0), float(v.t_end or 0.0), v.description) for v in r.frames
            if v.kind == "frame"]
        ans = answer_temporal(q, shots)
        if ans is None:
            return None
        ans.refs = ans.refs or [r.view.id]
        return ans

    def _compare(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        if not re.search(r"\b(compare|difference|differ|same|similar)\b", q) or len(targets) < 2:
            return None
        steps: list[Step] = []
        sets: list[set[str]] = []
        for r in targets:
            d = r.view.description
            tags = [t for t in d.tags if t.source in ("classifier", "hierarchy")][:6]
            sets.append({t.label for t in tags})
            steps.append(Step(f"{_name(r)}: " + ", ".join(f"'{t.label}' ({_fmt(t.score)})"
                                                          for t in tags) + ".",
                              [{"type": "tag", "view_id": r.view.id, "label": t.label,
                                "score": round(t.score, 3), "source": t.source} for t in tags]))
        common = set.intersection(*sets) if sets else set()
        text = ("They share " + ", ".join(f"'{c}'" for c in sorted(common)) + "; "
                if common else "They share no tag; ")
        text += "; ".join(f"only {_name(r)}: " + (", ".join(f"'{x}'" for x in sorted(s - common)
                                                          [:4]) or "nothing else")
                          for r, s in zip(targets, sets, strict=True)) + "."
        return Answer(text, steps, [], [r.view.id for r in targets])

    def _objects(self, q: str, targets: Sequence[ResultRef], res: Resolution) -> Answer | None:
        if not re.search(r"\b(what objects|what is (?:in|shown)|what's in|what do you see|"
                         r"describe|what(?:'s| is) (?:this|that|it)|what does (?:it|this|that|"
                         r"the \w+) show|what are (?:these|they|those))\b", q):
            return None
        steps: list[Step] = []
        parts: list[str] = []
        boxes: list[AnswerBox] = []
        for r in targets:
            d = r.view.description
            tags = [t for t in d.tags if t.source == "classifier"][:3]
            objs = d.objects[:5]
            bits = [f"'{t.label}' ({_fmt(t.score)})" for t in tags]
            bits += [f"a detected '{o.label}' ({_fmt(o.score)})" for o in objs]
            if d.ocr:
                bits.append(f"text '{d.ocr[0].text}'")
            parts.append(f"{_name(r)}: " + (", ".join(bits) if bits else "no confident tags"))
            ev = [{"type": "tag", "view_id": r.view.id, "label": t.label,
                   "score": round(t.score, 3), "source": t.source} for t in tags]
            ev += [{"type": "object", "view_id": r.view.id, "label": o.label,
                    "score": round(o.score, 3), "box": o.box.as_list()} for o in objs]
            ev += [{"type": "ocr", "view_id": r.view.id, "label": d.ocr[0].text,
                    "score": round(d.ocr[0].score, 3)}] if d.ocr else []
            steps.append(Step(parts[-1] + ".", ev))
            boxes += [AnswerBox(r.view.id, o.label, o.box) for o in objs]
        return Answer("; ".join(parts) + ".", steps, boxes, [r.view.id for r in targets])

    def _cannot_tell(self, targets: Sequence[ResultRef]) -> Answer:
        steps = []
        for r in targets[:3]:
            d = r.view.description
            steps.append(Step(f"{_name(r)}: stored evidence is its caption, "
                              f"{len(d.tags)} tags, {len(d.objects)} detected objects and "
                              f"{len(d.ocr)} OCR lines.",
                              [{"type": "caption", "view_id": r.view.id, "label": d.caption}]))
        return Answer(
            "I cannot tell from this evidence. The cpu backend only knows concept tags, "
            "detected objects (80 everyday classes, people and faces) with their boxes, text "
            "read in the image, measured colours and shot times; ask about one of those, or "
            "run the glm backend for open questions.",
            steps, [], [r.view.id for r in targets])

    # -- helpers --------------------------------------------------------------------------
    def _find(self, r: ResultRef, concept: str) -> list[tuple[str, Match]]:
        out: list[tuple[str, Match]] = []
        for v in r.frames or [r.view]:
            out += [(v.id, m) for m in find_concept(v.description, concept)]
        if not out and self.embed is not None:
            out += self._near(r, concept)
        return out

    def _near(self, r: ResultRef, concept: str) -> list[tuple[str, Match]]:
        """Semantic fallback: a tag whose text embedding is close to the concept's."""
        assert self.embed is not None
        v = r.view
        tags = [t for t in v.description.tags if t.source in ("classifier", "hierarchy")]
        if not tags:
            return []
        vecs = self.embed([concept] + [t.label for t in tags])
        sims = vecs[1:] @ vecs[0]
        i = int(np.argmax(sims))
        if float(sims[i]) >= 0.72 and tags[i].score >= 0.2:
            return [(v.id, Match("tag", tags[i].label, tags[i].score, source=tags[i].source))]
        return []
