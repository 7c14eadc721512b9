"""The caller's items: create, list, read, replace, delete, and export as a stream.

Reads are cached per user in the `items` namespace; every successful write invalidates that
user's `items` entries around its commit (and creations and deletions the shared `stats`), so a
read after a write's 2xx is never stale. Reads need
the token's `items:read` scope and writes `items:write`; writes also pause in maintenance mode
and announce themselves to WEBHOOK_URL.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.api.deps import (
    ItemsReaderDep,
    ItemsWriterDep,
    SessionDep,
    StreamingSessionDep,
)
from {{ cookiecutter.project_slug }}.api.stats import STATS_NAMESPACE
from {{ cookiecutter.project_slug }}.cache.decorator import cached_response
from {{ cookiecutter.project_slug }}.cache.invalidation import invalidate_on_commit
from {{ cookiecutter.project_slug }}.db.models import Item
from {{ cookiecutter.project_slug }}.errors import ErrorResponse
from {{ cookiecutter.project_slug }}.maintenance import refuse_writes_during_maintenance
from {{ cookiecutter.project_slug }}.schemas import ItemRead, ItemWrite, UserRead
from {{ cookiecutter.project_slug }}.webhooks import Notify, Webhook

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse}
    for code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN)
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = ERRORS | {
    code: {"model": ErrorResponse}
    # 400: a body that is not JSON at all; 503: maintenance, or the cache cannot be invalidated.
    for code in (status.HTTP_400_BAD_REQUEST, status.HTTP_503_SERVICE_UNAVAILABLE)
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {status.HTTP_404_NOT_FOUND: {"model": ErrorResponse}}

router = APIRouter(prefix="/api/items", tags=["items"], responses=ERRORS)
writes = [Depends(refuse_writes_during_maintenance)]

EXPORT_BATCH_SIZE = 500
NAMESPACE = "items"
# Ids are 32-bit integer columns; a larger one is a 422, not a database error.
ItemId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


async def get_owned_item(session: AsyncSession, user: UserRead, item_id: int) -> Item:
    """The caller's item `item_id`; 404 when it does not exist or belongs to someone else."""
    item = await session.scalar(select(Item).where(Item.id == item_id, Item.owner_id == user.id))
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Item not found")
    return item


def item_data(item: Item) -> dict[str, Any]:
    return ItemRead.model_validate(item).model_dump(mode="json")


@router.post(
    "",
    response_model=ItemRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=writes,
    responses=WRITE_ERRORS,
)
async def create_item(
    body: ItemWrite,
    user: ItemsWriterDep,
    session: SessionDep,
    request: Request,
    notify: Annotated[Notify, Depends(Webhook("item.created"))],
) -> Item:
    item = Item(owner_id=user.id, name=body.name, description=body.description)
    session.add(item)
    await session.flush()
    invalidate_on_commit(request, NAMESPACE, user_id=user.id)
    invalidate_on_commit(request, STATS_NAMESPACE)
    notify(item_data(item))
    return item


@router.get("", response_model=list[ItemRead])
@cached_response(namespace=NAMESPACE, per_user=True)
async def list_items(
    user: ItemsReaderDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    # Bounded like ids: the databases refuse an OFFSET beyond 64 bits with an error.
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[ItemRead]:
    query = select(Item).where(Item.owner_id == user.id).order_by(Item.id)
    items = await session.scalars(query.limit(limit).offset(offset))
    return [ItemRead.model_validate(item) for item in items]


@router.get("/export", response_class=StreamingResponse)
async def export_items(session: StreamingSessionDep, user: ItemsReaderDep) -> StreamingResponse:
    """Every item of the caller as NDJSON, read in batches while the response streams.

    The rows are read after this function has returned, so the session must outlive it: that is
    why this endpoint uses the request-scoped StreamingSessionDep rather than SessionDep. The
    session is declared first so that a request waiting for a streaming slot holds nothing else.
    """
    query = select(Item).where(Item.owner_id == user.id).order_by(Item.id)

    async def lines() -> AsyncIterator[bytes]:
        rows = await session.stream_scalars(query.execution_options(yield_per=EXPORT_BATCH_SIZE))
        async for item in rows:
            yield ItemRead.model_validate(item).model_dump_json().encode() + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/{item_id}", response_model=ItemRead, responses=NOT_FOUND)
@cached_response(namespace=NAMESPACE, per_user=True)
async def read_item(item_id: ItemId, user: ItemsReaderDep, session: SessionDep) -> ItemRead:
    return ItemRead.model_validate(await get_owned_item(session, user, item_id))


@router.put(
    "/{item_id}", response_model=ItemRead, dependencies=writes, responses=WRITE_ERRORS | NOT_FOUND
)
async def replace_item(
    item_id: ItemId,
    body: ItemWrite,
    user: ItemsWriterDep,
    session: SessionDep,
    request: Request,
    notify: Annotated[Notify, Depends(Webhook("item.updated"))],
) -> Item:
    item = await get_owned_item(session, user, item_id)
    item.name = body.name
    item.description = body.description
    await session.flush()
    await session.refresh(item)
    invalidate_on_commit(request, NAMESPACE, user_id=user.id)
    notify(item_data(item))
    return item


@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=writes,
    responses=WRITE_ERRORS | NOT_FOUND,
)
async def delete_item(
    item_id: ItemId,
    user: ItemsWriterDep,
    session: SessionDep,
    request: Request,
    notify: Annotated[Notify, Depends(Webhook("item.deleted"))],
) -> Response:
    await session.delete(await get_owned_item(session, user, item_id))
    invalidate_on_commit(request, NAMESPACE, user_id=user.id)
    invalidate_on_commit(request, STATS_NAMESPACE)
    notify({"id": item_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
