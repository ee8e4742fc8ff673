"""Temporal questions about one video, answered only from its ordered shot descriptions.

    answer_temporal("when does the dog first appear?", [(t0, t1, Description), ...])

Handles: first appearance, before / after X (or after a time such as 0:12), how long X is on
screen, how many times the scene changes, when several boxed objects are seen together.
Returns None for questions that are not temporal.
Every answer cites the shots it used (Answer.steps[*].evidence); when X is never seen the
answer says so instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexer.domain import Answer, Description, Step

ShotDesc = tuple[float, float, Description]

_ARTICLES = {"the", "a", "an", "any", "some", "this", "that"}
_NOT_SCENE_CHANGE = {"gap", "sample"}  # sub-shot splits are not edits


def fmt_t(t: float) -> str:
    """Seconds as m:ss (h:mm:ss past an hour), tenths kept when present."""
    t = max(0.0, round(t, 1))
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    sec = f"{int(s):02d}" if abs(s - round(s)) < 0.05 else f"{s:04.1f}"
    return f"{int(h)}:{int(m):02d}:{sec}" if h else f"{int(m)}:{sec}"


def parse_time(text: str) -> float | None:
    """'0:12', '1:02:03', '12s', '12 seconds', '1.5 min' -> seconds."""
    text = text.strip().lower()
    m = re.fullmatch(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)", text)
    if m:
        h = int(m.group(1) or 0)
        return h * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes)",
                     text)
    if m:
        v = float(m.group(1))
        return v * 60 if m.group(2).startswith("m") else v
    return None


_TIME_RE = (
    r"(?:\d+:)?\d{1,2}:\d{1,2}(?:\.\d+)?"
    r"|\d+(?:\.\d+)?\s*(?:s|sec|secs|seconds?|m|min|mins|minutes?)"
)


# --------------------------------------------------------------------------- matching


def _norm_word(w: str) -> str:
    w = w.lower()
    for suf in ("ies", "es", "s"):
        if w.endswith(suf) and len(w) > len(suf) + 2:
            if suf == "ies":
                return w[:-3] + "y"
            if suf == "es" and not w.endswith(("ses", "xes", "ches", "shes")):
                continue
            return w[: -len(suf)]
    return w


def _words(text: str) -> list[str]:
    return [_norm_word(w) for w in re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))]


@dataclass
class _Match:
    index: int
    t_start: float
    t_end: float
    kind: str  # tag | object | ocr
    label: str
    score: float
    source: str

    def evidence(self) -> dict[str, object]:
        ev: dict[str, object] = {
            "type": "shot",
            "index": self.index,
            "t_start": round(self.t_start, 3),
            "t_end": round(self.t_end, 3),
            "score": round(self.score, 4),
        }
        ev[{"tag": "tag", "object": "object", "ocr": "ocr"}[self.kind]] = self.label
        if self.kind == "tag":
            ev["source"] = self.source
        return ev


def _label_matches(subject: list[str], label: str) -> bool:
    lw = _words(label)
    if not subject or not lw:
        return False
    n = len(subject)
    return any(lw[i : i + n] == subject for i in range(len(lw) - n + 1))


def _match_shot(i: int, shot: ShotDesc, subject: list[str], min_score: float) -> _Match | None:
    t0, t1, desc = shot
    best: _Match | None = None
    for tag in desc.tags:
        if (tag.score >= min_score and _label_matches(subject, tag.label)
                and (best is None or tag.score > best.score)):
            best = _Match(i, t0, t1, "tag", tag.label, tag.score, tag.source)
    for obj in desc.objects:
        if (obj.score >= min_score and _label_matches(subject, obj.label)
                and (best is None or obj.score > best.score)):
            best = _Match(i, t0, t1, "object", obj.label, obj.score, "detector")
    if best is None:
        for line in desc.ocr:
            if _label_matches(subject, line.text):
                best = _Match(i, t0, t1, "ocr", line.text, line.score, "ocr")
                break
    return best


def _clean_subject(raw: str) -> str:
    s = raw.strip().strip("?.!\"' ").lower()
    s = re.sub(r"\b(on screen|on-screen|in the video|in this video|in the clip|visible|shown|"
               r"appear(s|ing)?|seen|show up|shows up|for the first time|first)\b", " ", s)
    words = [w for w in re.findall(r"[a-z0-9']+", s) if w not in _ARTICLES]
    return " ".join(words)


# --------------------------------------------------------------------------- intents

_Q = r"[\s?.!]*$"
_FIRST = [
    re.compile(r"^(?:when|at what (?:time|point|moment)|what time)\s+(?:does|do|did|is|are|was|were)\s+(?P<x>.+?)\s+(?:first\s+)?(?:appear|appears|show up|shows up|come on screen|enter|enters|seen|shown|visible|on screen|in the video)(?:\s+first)?(?:\s+(?:in the video|on screen))?" + _Q),  # noqa: E501
    re.compile(r"^(?:when|at what (?:time|point))\s+(?:can|do)\s+(?:we|you|i)\s+(?:first\s+)?(?:see|spot)\s+(?P<x>.+?)" + _Q),  # noqa: E501
    re.compile(r"^(?:when|where in the video)\s+(?:is|are)\s+(?P<x>.+?)(?:\s+first)?" + _Q),
    re.compile(r"^(?:(?:at what time is|when is|find)\s+)?(?:the\s+)?first\s+(?:appearance|time|sighting)\s+(?:of\s+)?(?P<x>.+?)" + _Q),  # noqa: E501
]
_AROUND = re.compile(
    r"^what\s+(?:happens|is shown|is happening|comes|do we see|can we see|is on screen|is seen)\s+"
    r"(?:right\s+|just\s+|immediately\s+)?(?P<dir>before|after|prior to|following)\s+(?P<x>.+?)"
    + _Q
)
_DURATION = [
    re.compile(r"^(?:for\s+)?how long\s+(?:is|are|does|do|was|were)\s+(?P<x>.+?)\s+(?:on screen|on-screen|visible|shown|seen|in the video|in view|appear|appears|show|stay|stays)(?:\s+(?:on screen|for))?" + _Q),  # noqa: E501
    re.compile(r"^how (?:many|much) (?:seconds|time|minutes)\s+(?:is|are|does|do)\s+(?P<x>.+?)\s+(?:on screen|visible|shown|seen|appear|in the video|in view)" + _Q),  # noqa: E501
    re.compile(r"^how much screen time does\s+(?P<x>.+?)\s+(?:get|have)" + _Q),
]
_TOGETHER = [
    re.compile(r"^(?:when|in which shots?|at what times?)\s+(?:do|does|are|is|can (?:we|you|i) "
               r"see)\s+(?P<x>.+?)\s+(?:appear\s+|seen\s+|shown\s+|visible\s+|on screen\s+)?"
               r"(?:together|at the same time|at once)" + _Q),
    re.compile(r"^(?:when|in which shots?)\s+(?:are|is)\s+there\s+(?P<x>(?:\d+|two|three|four|"
               r"five|six)\s+.+?)(?:\s+(?:on screen|in view|in the video|together))?" + _Q),
]
_CHANGES = re.compile(
    r"^how many\s+(?:times\s+does\s+the\s+(?:scene|shot|camera angle)\s+change|scene changes|"
    r"cuts|shots|scenes|shot changes|scene cuts|times does it cut)\b"
)


def answer_temporal(
    question: str, shots: list[ShotDesc], *, min_score: float = 0.0
) -> Answer | None:
    """Answer a temporal question from ordered shot descriptions, or None if not temporal."""
    q = " ".join(question.strip().lower().split())
    order = sorted(range(len(shots)), key=lambda i: (shots[i][0], shots[i][1]))
    ordered = [(i, shots[i]) for i in order]

    if _CHANGES.match(q):
        return _scene_changes(ordered)
    m = _AROUND.match(q)
    if m:
        before = m.group("dir") in ("before", "prior to")
        target = m.group("x").strip()
        tm = re.fullmatch(r"(?:the\s+)?(?:time\s+)?(?:mark\s+)?(" + _TIME_RE + r")", target)
        if tm:
            t = parse_time(tm.group(1))
            if t is not None:
                return _around_time(ordered, t, before)
        return _around_subject(ordered, _clean_subject(target), before, min_score)
    for rx in _TOGETHER:
        m = rx.match(q)
        if m:
            got = _together(ordered, m.group("x"))
            if got is not None:
                return got
    for rx in _DURATION:
        m = rx.match(q)
        if m:
            return _duration(ordered, _clean_subject(m.group("x")), min_score)
    for rx in _FIRST:
        m = rx.match(q)
        if m:
            subject = _clean_subject(m.group("x"))
            if subject:
                return _first(ordered, subject, min_score)
    return None


def _find(ordered: list[tuple[int, ShotDesc]], subject: str, min_score: float) -> list[_Match]:
    sw = _words(subject)
    out = []
    for i, shot in ordered:
        hit = _match_shot(i, shot, sw, min_score)
        if hit is not None:
            out.append(hit)
    return out


def _never(subject: str, ordered: list[tuple[int, ShotDesc]], intent: str) -> Answer:
    n = len(ordered)
    text = f'"{subject}" does not appear in any of the {n} shots of this video.'
    span = (ordered[0][1][0], ordered[-1][1][1]) if ordered else (0.0, 0.0)
    return Answer(
        text=text,
        steps=[Step(
            f"Checked the tags, objects and on-screen text of all {n} shots "
            f"({fmt_t(span[0])}–{fmt_t(span[1])}); none matches \"{subject}\".",
            [{"type": "shots_checked", "count": n, "t_start": span[0], "t_end": span[1]}],
        )],
        debug={"intent": intent, "subject": subject, "found": False},
    )


def _describe(shot: ShotDesc, k: int = 4) -> str:
    _, _, desc = shot
    tags = [t.label for t in sorted(desc.tags, key=lambda t: -t.score) if t.source != "hierarchy"]
    tags = tags[:k] or [t.label for t in desc.tags[:k]]
    parts = []
    if desc.caption:
        parts.append(desc.caption.rstrip("."))
    elif tags:
        parts.append(", ".join(tags))
    objs = sorted({o.label for o in desc.objects})
    if objs and not desc.caption:
        parts.append("objects: " + ", ".join(objs[:k]))
    if desc.ocr:
        parts.append('text "' + desc.ocr_text[:80] + '"')
    return "; ".join(parts) or "nothing the model could name"


def _shot_ev(i: int, shot: ShotDesc) -> dict[str, object]:
    t0, t1, desc = shot
    tags = sorted(desc.tags, key=lambda t: -t.score)[:5]
    return {
        "type": "shot",
        "index": i,
        "t_start": round(t0, 3),
        "t_end": round(t1, 3),
        "tags": [t.label for t in tags],
        "caption": desc.caption,
    }


def _first(ordered: list[tuple[int, ShotDesc]], subject: str, min_score: float) -> Answer:
    hits = _find(ordered, subject, min_score)
    if not hits:
        return _never(subject, ordered, "first_appearance")
    first = hits[0]
    via = f'{first.kind} "{first.label}"' if first.kind != "tag" or first.label.lower() != subject \
        else f'tag "{first.label}"'
    text = (f'"{subject}" first appears at {fmt_t(first.t_start)} (shot {first.index}, '
            f"{fmt_t(first.t_start)}–{fmt_t(first.t_end)}, matched by {via}, "
            f"score {first.score:.2f}).")
    steps = [Step(f"Scanned {len(ordered)} shots in time order for \"{subject}\".", [])]
    steps.append(Step(f"Earliest matching shot: {first.index} at {fmt_t(first.t_start)}.",
                      [first.evidence()]))
    if len(hits) > 1:
        text += f" It is seen in {len(hits)} shots in total."
        steps.append(Step(f"Later matching shots: {', '.join(str(h.index) for h in hits[1:])}.",
                          [h.evidence() for h in hits[1:]]))
    return Answer(text=text, steps=steps,
                  debug={"intent": "first_appearance", "subject": subject, "found": True})


def _runs(ordered: list[tuple[int, ShotDesc]], hits: list[_Match]) -> list[tuple[int, int]]:
    """Contiguous runs of matching shots as (first, last) positions in `ordered`."""
    pos = {i: p for p, (i, _) in enumerate(ordered)}
    ps = sorted(pos[h.index] for h in hits)
    runs: list[tuple[int, int]] = []
    for p in ps:
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


def _around_subject(
    ordered: list[tuple[int, ShotDesc]], subject: str, before: bool, min_score: float
) -> Answer:
    intent = "before" if before else "after"
    if not subject:
        return Answer("I could not tell what the question refers to.",
                      debug={"intent": intent, "subject": subject})
    hits = _find(ordered, subject, min_score)
    if not hits:
        return _never(subject, ordered, intent)
    first_run = _runs(ordered, hits)[0]
    by_index = {h.index: h for h in hits}
    run_ev = [by_index[ordered[p][0]].evidence() for p in range(first_run[0], first_run[1] + 1)]
    a_t0 = ordered[first_run[0]][1][0]
    a_t1 = ordered[first_run[1]][1][1]
    steps = [Step(f'"{subject}" is first on screen {fmt_t(a_t0)}–{fmt_t(a_t1)} '
                  f"(shot{'s' if len(run_ev) > 1 else ''} "
                  f"{', '.join(str(e['index']) for e in run_ev)}).", run_ev)]
    p = first_run[0] - 1 if before else first_run[1] + 1
    if not 0 <= p < len(ordered):
        where = "opening" if before else "final"
        text = (f'Nothing comes {intent} "{subject}": it is in the {where} shot '
                f"({fmt_t(a_t0)}–{fmt_t(a_t1)}).")
        return Answer(text, steps, debug={"intent": intent, "subject": subject, "found": True})
    i, shot = ordered[p]
    text = (f'{"Before" if before else "After"} "{subject}" ({fmt_t(a_t0)}–{fmt_t(a_t1)}), '
            f"shot {i} ({fmt_t(shot[0])}–{fmt_t(shot[1])}) shows: {_describe(shot)}.")
    steps.append(Step(f"The shot {'just before' if before else 'right after'} that is {i}.",
                      [_shot_ev(i, shot)]))
    return Answer(text, steps, debug={"intent": intent, "subject": subject, "found": True})


def _around_time(ordered: list[tuple[int, ShotDesc]], t: float, before: bool) -> Answer:
    intent = "before_time" if before else "after_time"
    if not ordered:
        return Answer("This video has no shots to look at.", debug={"intent": intent})
    end = ordered[-1][1][1]
    if t > end:
        return Answer(f"{fmt_t(t)} is past the end of the video ({fmt_t(end)}).",
                      debug={"intent": intent, "t": t})
    if before:
        picked = [(i, s) for i, s in ordered if s[0] < t][-2:]
    else:
        picked = [(i, s) for i, s in ordered if s[1] > t][:2]
    if not picked:
        return Answer(f"Nothing comes before {fmt_t(t)}: it is the start of the video.",
                      debug={"intent": intent, "t": t})
    parts = []
    for i, s in picked:
        parts.append(f"shot {i} ({fmt_t(s[0])}–{fmt_t(s[1])}): {_describe(s)}")
    text = f"{'Before' if before else 'After'} {fmt_t(t)}: " + "; then ".join(parts) + "."
    steps = [Step(f"Shots {'ending before' if before else 'running after'} {fmt_t(t)}.",
                  [_shot_ev(i, s) for i, s in picked])]
    return Answer(text, steps, debug={"intent": intent, "t": t})


def _duration(ordered: list[tuple[int, ShotDesc]], subject: str, min_score: float) -> Answer:
    hits = _find(ordered, subject, min_score)
    if not subject or not hits:
        return _never(subject, ordered, "duration")
    spans = sorted((h.t_start, h.t_end) for h in hits)
    total = 0.0
    cur_a, cur_b = spans[0]
    for a, b in spans[1:]:
        if a > cur_b:
            total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    total += cur_b - cur_a
    runs = _runs(ordered, hits)
    video = ordered[-1][1][1] - ordered[0][1][0]
    share = f" ({100 * total / video:.0f}% of the video)" if video > 0 else ""
    text = (f'"{subject}" is on screen for about {total:.1f} s{share}, in {len(hits)} '
            f"shot{'s' if len(hits) != 1 else ''} across {len(runs)} "
            f"stretch{'es' if len(runs) != 1 else ''}.")
    steps = [Step(f"Shots showing \"{subject}\": " + ", ".join(
        f"{h.index} ({fmt_t(h.t_start)}–{fmt_t(h.t_end)})" for h in hits) + ".",
        [h.evidence() for h in hits])]
    steps.append(Step(f"Summed their durations (overlaps counted once): {total:.1f} s.", []))
    return Answer(text, steps, debug={"intent": "duration", "subject": subject, "found": True,
                                      "seconds": round(total, 3)})


def _scene_changes(ordered: list[tuple[int, ShotDesc]]) -> Answer:
    changes = []
    for (_, prev), (i, cur) in zip(ordered, ordered[1:], strict=False):
        if str(cur[2].extra.get("boundary", "")) in _NOT_SCENE_CHANGE:
            continue
        changes.append((i, cur, prev))
    n = len(changes)
    scenes = n + 1 if ordered else 0
    text = (f"The scene changes {n} time{'s' if n != 1 else ''} "
            f"({scenes} shot{'s' if scenes != 1 else ''}).")
    if changes:
        text += " Changes at " + ", ".join(fmt_t(c[1][0]) for c in changes[:12])
        text += ("…" if n > 12 else "") + "."
    ev = [{"type": "cut", "index": i, "t": round(cur[0], 3), "t_start": round(cur[0], 3),
           "t_end": round(cur[1], 3)} for i, cur, _ in changes]
    skipped = len(ordered) - 1 - n if ordered else 0
    steps = [Step(f"Counted boundaries between the {len(ordered)} ordered shots"
                  + (f", ignoring {skipped} split(s) inside long static shots" if skipped else "")
                  + ".", ev)]
    return Answer(text, steps, debug={"intent": "scene_changes", "count": n})


__all__ = ["answer_temporal", "fmt_t", "parse_time"]


def _together(ordered: list[tuple[int, ShotDesc]], subject: str) -> Answer | None:
    """"when do two people appear together", "when are a cat and a dog on screen together":
    the shots whose detector boxes hold every named object at least as many times as asked.
    None when the subject names nothing a detector boxes (other intents may answer)."""
    from indexer.reasoning.counting import boxes_of, parse_query

    wanted = parse_query(subject.strip()).objects
    if not wanted:
        return None
    need = [(w.label, w.count or 1) for w in wanted]
    if len(need) == 1 and need[0][1] == 1:
        need = [(need[0][0], 2)]  # "when do people appear together": two at least
    words = " and ".join(f"{n} '{label}'" for label, n in need)
    hits = []
    for i, (t0, t1, desc) in ordered:
        counts = {label: len(boxes_of(desc, label)) for label, _ in need}
        if all(counts[label] >= n for label, n in need):
            hits.append((i, t0, t1, counts))
    steps = [Step(f"Counted the detector boxes of {words} in each of the {len(ordered)} "
                  "shots, in time order.",
                  [{"type": "shots_checked", "count": len(ordered)}])]
    if not hits:
        return Answer(f"No shot shows {words} together (checked {len(ordered)} shots).", steps,
                      debug={"intent": "together", "found": False})
    spans = ", ".join(f"{fmt_t(t0)}–{fmt_t(t1)}" for _, t0, t1, _ in hits)
    steps.append(Step(f"Shots with {words}: {spans}.",
                      [{"type": "shot", "index": i, "t_start": round(t0, 3),
                        "t_end": round(t1, 3), "counts": c} for i, t0, t1, c in hits]))
    return Answer(f"At least {words} appear together in {len(hits)} shot"
                  f"{'s' if len(hits) != 1 else ''}: {spans}.", steps,
                  debug={"intent": "together", "found": True})
