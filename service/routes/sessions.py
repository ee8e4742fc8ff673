from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from indexer.errors import GlimpseError
from service.deps import CoreDep, Reader
from service.schemas import AnswerOut, QuestionIn

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


@router.get("/{session_id}")
def get_session(session_id: str, core: CoreDep, who: Reader) -> dict[str, Any]:
    """The whole conversation: the query, its results and every turn."""
    return core.conversations.get(session_id, tenant=who.tenant)  # type: ignore[no-any-return]


@router.post("/{session_id}/messages", response_model=AnswerOut,
             responses={200: {"content": {"text/event-stream": {}}}})
async def ask(session_id: str, body: QuestionIn, request: Request,  # type: ignore[no-untyped-def]
              core: CoreDep, who: Reader):
    """Ask a follow-up question about this session's results. With `"stream": true` or
    `Accept: text/event-stream`, the answer comes as server-sent events (step, answer,
    done)."""
    wants_sse = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_sse:
        return await run_in_threadpool(core.conversations.ask, session_id, body.question,
                                       who.tenant)
    core.conversations.store.get(session_id, tenant=who.tenant)  # 404 before the stream

    def events() -> Iterator[str]:
        try:
            for ev in core.conversations.ask_stream(session_id, body.question, who.tenant):
                yield f"event: {ev['event']}\ndata: {json.dumps(ev['data'])}\n\n"
        except GlimpseError as e:
            yield f"event: error\ndata: {json.dumps({'code': e.code, 'message': e.message})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
