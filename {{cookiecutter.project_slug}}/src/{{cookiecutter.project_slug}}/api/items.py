"""The caller's items: create, list, read, replace, delete, and export as a stream.

Reads are cached per user in the `items` namespace; every successful write invalidates that
user's `items` entries around its commit (and creations and deletions the shared `stats`), so a
read after a write's 2xx is never stale. Reads need the token's `items:read` scope and writes
`items:write`; writes also pause in maintenance mode and announce themselves to WEBHOOK_URL.
The parts every per-user resource shares come from api/resources.py.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.api.deps import SessionDep, StreamingSessionDep
from {{ cookiecutter.project_slug }}.api.resources import (
    AUTH_ERRORS,
    MAX_OFFSET,
    NOT_FOUND,
    WRITE_ERRORS,
    WRITE_GUARDS,
    RecordId,
)
from {{ cookiecutter.project_slug }}.api.stats import STATS_NAMESPACE
from {{ cookiecutter.project_slug }}.auth import require_scope
from {{ cookiecutter.project_slug }}.cache.decorator import cached_response
from {{ cookiecutter.project_slug }}.cache.invalidation import invalidate_on_commit
from {{ cookiecutter.project_slug }}.db.models import Item
from {{ cookiecutter.project_slug }}.schemas import ItemRead, ItemWrite, UserRead
from {{ cookiecutter.project_slug }}.webhooks import Notify, Webhook

# Who may call: the caller, if the token holds the scope (auth.py, scopes.py).
ItemsReaderDep = Annotated[UserRead, Depends(require_scope("items:read"))]
ItemsWriterDep = Annotated[UserRead, Depends(require_scope("items:write"))]

router = APIRouter(prefix="/api/items", tags=["items"], responses=AUTH_ERRORS)

EXPORT_BATCH_SIZE = 500
NAMESPACE = "items"


def item_data(item: Item) -> dict[str, Any]:
    return ItemRead.model_validate(item).model_dump(mode="json")


@router.post(
    "",
    response_model=ItemRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=WRITE_GUARDS,
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
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
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
async def read_item(item_id: RecordId, user: ItemsReaderDep, session: SessionDep) -> ItemRead:
    return ItemRead.model_validate(await Item.get_owned(session, user.id, item_id))


@router.put(
    "/{item_id}",
    response_model=ItemRead,
    dependencies=WRITE_GUARDS,
    responses=WRITE_ERRORS | NOT_FOUND,
)
async def replace_item(
    item_id: RecordId,
    body: ItemWrite,
    user: ItemsWriterDep,
    session: SessionDep,
    request: Request,
    notify: Annotated[Notify, Depends(Webhook("item.updated"))],
) -> Item:
    item = await Item.get_owned(session, user.id, item_id)
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
    dependencies=WRITE_GUARDS,
    responses=WRITE_ERRORS | NOT_FOUND,
)
async def delete_item(
    item_id: RecordId,
    user: ItemsWriterDep,
    session: SessionDep,
    request: Request,
    notify: Annotated[Notify, Depends(Webhook("item.deleted"))],
) -> Response:
    await session.delete(await Item.get_owned(session, user.id, item_id))
    invalidate_on_commit(request, NAMESPACE, user_id=user.id)
    invalidate_on_commit(request, STATS_NAMESPACE)
    notify({"id": item_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
