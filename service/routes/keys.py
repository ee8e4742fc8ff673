"""API keys over HTTP, for admin keys: create (the key is in this one response only), list,
revoke. Admin keys manage the keys of every tenant (they are the server's operators)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from service.deps import AdminAuth, KeysDep
from service.schemas import ErrorBody, UtcDatetime

router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[AdminAuth],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class KeyIn(BaseModel):
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    scope: Literal["read", "write", "admin"] = "read"
    label: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    id: str
    tenant: str
    scope: str
    label: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="the key itself: shown in this response only")


@router.post("", response_model=NewKeyOut, status_code=201)
async def create_key(body: KeyIn, keys: KeysDep) -> NewKeyOut:
    key, info = await run_in_threadpool(keys.create, body.tenant, body.scope, body.label)
    return NewKeyOut(key=key, **info.as_dict())  # type: ignore[arg-type]


@router.get("", response_model=list[KeyOut])
def list_keys(keys: KeysDep) -> list[KeyOut]:
    return [KeyOut(**k.as_dict()) for k in keys.list()]  # type: ignore[arg-type]


@router.delete("/{key_id}", response_model=KeyOut, responses={404: {"model": ErrorBody}})
def revoke_key(key_id: str, keys: KeysDep) -> KeyOut:
    return KeyOut(**keys.revoke(key_id).as_dict())  # type: ignore[arg-type]
