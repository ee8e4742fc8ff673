"""Conversations about a result set: every search opens a session; follow-up questions are
resolved against its results ("the second one", "these", "at 0:12") and answered — from
stored evidence by the cpu backend, natively (with the referenced views) by glm/openai."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from indexer.domain import Answer, DetectedObject, Step, Turn, ViewInput
from indexer.errors import InvalidRequest
from indexer.reasoning.closer import with_closer_look
from indexer.reasoning.counting import boxes_of
from indexer.reasoning.qa import EvidenceQA, box_labels
from indexer.reasoning.refs import ResultRef, resolve
from indexer.stores.catalog import SessionStore

if TYPE_CHECKING:
    from indexer.context import Glimpse
    from indexer.search import SearchQuery, SearchResponse

log = logging.getLogger(__name__)

CLOSER_LOOK_VIEWS = 4  # views a follow-up looks at again, at most (the first ones asked)


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def answer_dict(a: Answer) -> dict[str, Any]:
    return {
        "answer": a.text,
        "steps": [{"n": i + 1, "text": s.text, "evidence": s.evidence}
                  for i, s in enumerate(a.steps)],
        "boxes": [{"view_id": b.view_id, "label": b.label, "box": b.box.as_list()}
                  for b in a.boxes],
        "refs": a.refs,
        "debug": a.debug,
    }


class ConversationService:
    def __init__(self, core: Glimpse) -> None:
        self.core = core
        ss = core.settings.sessions
        self.store = SessionStore(core.catalog, idle_s=ss.idle_expiry_s,
                                  max_live=ss.max_per_tenant)
        self._refs_cache: OrderedDict[tuple[str, ...], list[ResultRef]] = OrderedDict()
        self._cache_lock = threading.Lock()
        # boxes of a closer look, per (view id, side): a view's pixels do not change under
        # its id (a re-index writes new views), so a second question about it costs nothing
        self._closer: OrderedDict[tuple[str, int], list[DetectedObject]] = OrderedDict()

    def open(self, q: SearchQuery, resp: SearchResponse) -> str:
        query = {"text": q.text, "example_media_id": q.example_media_id,
                 "image": q.image is not None, "k": q.k}
        results = [{"index": i, "media_id": r.media_id, "view_id": r.view_id, "kind": r.kind,
                    "score": r.score, "relevance": r.relevance,
                    "other_views": r.other_views[:20]}
                   for i, r in enumerate(resp.results)]
        return self.store.create(self._tenant(q.filters.tenant), query, results)

    def _tenant(self, tenant: str | None) -> str:
        return tenant or self.core.settings.tenant

    def get(self, session_id: str, *, tenant: str | None = None) -> dict[str, Any]:
        s = self.store.get(session_id, tenant=self._tenant(tenant))
        turns = self.store.turns(session_id)
        return {
            "session_id": s.id, "query": s.query, "results": s.results,
            "created_at": _aware(s.created_at).isoformat(),
            "turns": [{"n": t.idx, "role": t.role, "text": t.text,
                       **({k: v for k, v in (t.payload or {}).items() if k != "text"}
                          if t.role == "assistant" else {})}
                      for t in turns],
        }

    def ask(self, session_id: str, question: str,
            tenant: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for ev in self._turn(session_id, question, self._tenant(tenant), stream=False):
            if ev["event"] == "answer":
                out = ev["data"]
        return out

    def ask_stream(self, session_id: str, question: str,
                   tenant: str | None = None) -> Iterator[dict[str, Any]]:
        """Events for server-sent streaming. A backend that streams (openai) sends `delta`
        events ({"type": "reasoning"|"content", "text"}) as tokens arrive; every backend then
        sends each reasoning `step`, the `answer`, and `done`."""
        yield from self._turn(session_id, question, self._tenant(tenant), stream=True)

    def _turn(self, session_id: str, question: str, tenant: str, *,
              stream: bool) -> Iterator[dict[str, Any]]:
        question = (question or "").strip()
        if not question:
            raise InvalidRequest("the question is empty")
        if len(question) > 2000:
            raise InvalidRequest("the question is longer than 2000 characters")
        t0 = time.perf_counter()
        s = self.store.get(session_id, tenant=tenant)
        # the last few turns only: earlier ones are neither the previous answer nor in the
        # model's history window, and reading them all made turn 200 3.5x slower than turn 1
        turns = self.store.recent_turns(session_id,
                                        2 * self.core.settings.sessions.history_turns)
        refs = self._result_refs(s.results, tenant)
        previous: list[int] = []
        for t in reversed(turns):
            if t.role == "assistant":
                previous = list((t.payload or {}).get("result_indices", []))
                break
        res = resolve(question, refs, previous)
        targets = [refs[i] for i in res.indices]
        ans: Answer | None = None
        if not self.core.model.generative:
            targets, looked = self._look_closer(question, targets)
            ans = EvidenceQA(embed=self.core.model.embed_texts).answer(question, targets, res)
            ans.steps[:0] = looked
        elif stream and self._streams(targets):
            for ev in self._native_stream(question, targets, turns):
                if ev.get("type") == "done":
                    ans = ev["answer"]
                else:
                    yield {"event": "delta", "data": ev}
        if ans is None:
            ans = self._native(question, targets, turns)
        out = answer_dict(ans)
        # the results the answer is about (e.g. only those that have a cat), and all it checked
        refs_set = set(ans.refs)
        about = [r.index for r in targets
                 if refs_set & ({r.view.id} | {f.id for f in r.frames})]
        out["result_indices"] = about or res.indices
        out["checked_indices"] = res.indices
        out["resolved_as"] = res.how
        out["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        self.store.add_turns(session_id, [
            ("user", question, {}),
            ("assistant", ans.text, {k: v for k, v in out.items() if k != "answer"}),
        ])
        for st in out["steps"]:
            yield {"event": "step", "data": st}
        yield {"event": "answer", "data": out}
        yield {"event": "done", "data": {"latency_ms": out["latency_ms"]}}

    def _look_closer(self, question: str, targets: list[ResultRef]
                     ) -> tuple[list[ResultRef], list[Step]]:
        """For a count or relation question about COCO classes: the first few targets (not
        videos: their shots keep the index's boxes) with their detector boxes replaced by a
        second look at a larger input side (indexer/reasoning/closer.py), and one step per
        view saying so, with the index's count beside the new one. Anything that fails
        leaves the stored boxes in place: the answer is never lost to the second look."""
        model = self.core.model
        look = getattr(model, "look_closer", None)
        side = int(getattr(model, "closer_side", 0) or 0)
        index_side = int(getattr(model, "index_side", 0) or 0)
        labels = sorted(box_labels(question)) if look is not None and side else []
        if not labels:
            return targets, []
        out: list[ResultRef] = []
        steps: list[Step] = []
        for r in targets:
            if r.media_kind == "video" or len(steps) >= CLOSER_LOOK_VIEWS:
                out.append(r)
                continue
            key = (r.view.id, side)
            with self._cache_lock:
                found = self._closer.get(key)
            if found is None:
                try:
                    found = look(self.core.view_image(r.view))  # type: ignore[misc]
                except Exception:  # noqa: BLE001 - the stored boxes still answer
                    log.warning("closer look at view %s failed", r.view.id, exc_info=True)
                    found = None
                if found is None:
                    out.append(r)
                    continue
                with self._cache_lock:
                    self._closer[key] = found
                    while len(self._closer) > 512:
                        self._closer.popitem(last=False)
            nr = with_closer_look(r, found, side)
            before = {lab: len(boxes_of(r.view.description, lab)) for lab in labels}
            after = {lab: len(boxes_of(nr.view.description, lab)) for lab in labels}
            said = "; ".join(f"'{lab}' {after[lab]} box{'es' if after[lab] != 1 else ''} "
                             f"(the index's {index_side} px pass "
                             f"stored {before[lab]})" for lab in labels)
            steps.append(Step(
                f"Result {r.index + 1}: looked again at {side} px for small objects: {said}.",
                [{"type": "closer_look", "view_id": r.view.id, "side": side, "label": lab,
                  "count": after[lab], "index_count": before[lab]} for lab in labels]))
            out.append(nr)
        return out, steps

    def _streams(self, targets: list[ResultRef]) -> bool:
        video = len(targets) == 1 and targets[0].media_kind == "video"
        return not video and hasattr(self.core.model, "answer_stream")

    def _native_stream(self, question: str, targets: list[ResultRef],
                       turns: list[Any]) -> Iterator[dict[str, Any]]:
        views = self._views(targets)
        history = [Turn(t.role, t.text) for t in turns]
        yield from self.core.model.answer_stream(  # type: ignore[attr-defined]
            question, views, [r.view.description for r in targets], history)

    def _result_refs(self, results: list[dict[str, Any]], tenant: str) -> list[ResultRef]:
        """The session's results with their evidence, cached (bounded) so follow-up turns
        skip reading and parsing the views. The key carries each media row's last change, so
        a media re-indexed (by this process or a worker) while the session is open is read
        again: one small query instead of stale evidence."""
        versions = self.core.catalog.media_versions(sorted({r["media_id"] for r in results}))
        key = (tenant, *(r["view_id"] for r in results),
               *(f"{m}@{t.isoformat()}" for m, t in sorted(versions.items())))
        with self._cache_lock:
            hit = self._refs_cache.get(key)
            if hit is not None:
                self._refs_cache.move_to_end(key)
                return hit
        refs = self._load_refs(results, tenant)
        with self._cache_lock:
            self._refs_cache[key] = refs
            while len(self._refs_cache) > 256:
                self._refs_cache.popitem(last=False)
        return refs

    def _load_refs(self, results: list[dict[str, Any]], tenant: str) -> list[ResultRef]:
        cat = self.core.catalog
        views = cat.views_by_ids([r["view_id"] for r in results])
        media = cat.media_by_ids([r["media_id"] for r in results])
        refs: list[ResultRef] = []
        for r in results:
            v = views.get(r["view_id"])
            m = media.get(r["media_id"])
            # deleted since the search (keep numbering stable), or never this tenant's
            if v is None or m is None or m.tenant != tenant:
                continue
            frames = cat.views_of(m.id) if m.kind == "video" else []
            refs.append(ResultRef(int(r["index"]), m.id, m.kind, v, frames))
        return refs

    def _native(self, question: str, targets: list[ResultRef], turns: list[Any]) -> Answer:
        """The model sees the referenced views. A single video is given as its keyframes with
        timestamps through the model's native video input, so temporal questions are
        answered from the frames themselves."""
        history = [Turn(t.role, t.text) for t in turns]
        model = self.core.model
        answer_video = getattr(model, "answer_video", None)
        if len(targets) == 1 and targets[0].media_kind == "video" and answer_video:
            shots = [f for f in targets[0].frames if f.kind == "frame"]
            frames = [(float(f.t_start or 0.0), self.core.view_image(f)) for f in shots]
            ans: Answer = answer_video(question, frames, history)
            ans.refs = ans.refs or [f.id for f in shots]
            return ans
        views = self._views(targets)
        return model.answer(question, views, [r.view.description for r in targets], history)

    def _views(self, targets: list[ResultRef]) -> list[ViewInput]:
        """The pixels of the referenced views, for backends that look at images."""
        return [ViewInput(r.view.id, self.core.view_image(r.view), r.view.kind,  # type: ignore[arg-type]
                          r.view.t_start, r.view.t_end, r.view.page) for r in targets]
