"""Counts shared by every caller: one cached response for all, invalidated by item writes."""

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select

from {{ cookiecutter.project_slug }}.api.deps import SessionDep
from {{ cookiecutter.project_slug }}.cache.decorator import cached_response
from {{ cookiecutter.project_slug }}.db.models import Item, User

STATS_NAMESPACE = "stats"

router = APIRouter(prefix="/api", tags=["stats"])


class ServiceStats(BaseModel):
    users: int
    items: int


@router.get("/stats", response_model=ServiceStats)
@cached_response(namespace=STATS_NAMESPACE, per_user=False)
async def read_stats(session: SessionDep) -> ServiceStats:
    """How many users and items the service holds; public, the same for every caller."""
    users = await session.scalar(select(func.count()).select_from(User))
    items = await session.scalar(select(func.count()).select_from(Item))
    return ServiceStats(users=users or 0, items=items or 0)
