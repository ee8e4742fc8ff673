from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from indexer.errors import GlimpseError, InvalidRequest
from service.deps import Auth, CoreDep
from service.schemas import AnswerOut, QuestionIn

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], dependencies=[Auth])


@router.get("/{session_id}")
def get_session(session_id: str, core: CoreDep) -> dict[str, Any]:
    """The whole conversation: the query, its results and every turn."""
    return core.conversations.get(session_id)  # type: ignore[no-any-return]


@router.post("/{session_id}/messages", response_model=AnswerOut,
             responses={200: {"content": {"text/event-stream": {}}}})
async def ask(session_id: str, request: Request, core: CoreDep):  # type: ignore[no-untyped-def]
    """Ask a follow-up question about this session's results. With `"stream": true` or
    `Accept: text/event-stream`, the answer comes as server-sent events (step, answer,
    done)."""
    try:
        body = QuestionIn.model_validate(await request.json())
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidRequest('send JSON {"question": "..."} (1–2000 characters)') from e
    wants_sse = body.stream or "text/event-stream" in request.headers.get("accept", "")
    if not wants_sse:
        return await run_in_threadpool(core.conversations.ask, session_id, body.question)
    core.conversations.store.get(session_id)  # 404 before the stream starts

    def events() -> Iterator[str]:
        try:
            for ev in core.conversations.ask_stream(session_id, body.question):
                yield f"event: {ev['event']}\ndata: {json.dumps(ev['data'])}\n\n"
        except GlimpseError as e:
            yield f"event: error\ndata: {json.dumps({'code': e.code, 'message': e.message})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
