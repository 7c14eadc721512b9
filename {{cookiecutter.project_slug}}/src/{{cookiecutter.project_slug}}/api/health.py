"""Liveness and readiness probes for orchestrators and load balancers."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.api.deps import CacheDep, DatabaseDep, SettingsDep
from {{ cookiecutter.project_slug }}.cache.guard import BreakerOpenError

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/health", tags=["health"])

# degraded: skipped without waiting, because it failed moments ago (cache/guard.py).
CheckStatus = Literal["ok", "failing", "degraded"]


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckStatus]
    failing: list[str]


async def probe(name: str, check: Callable[[], Awaitable[None]], time_limit: float) -> CheckStatus:
    try:
        async with asyncio.timeout(time_limit):
            await check()
    except BreakerOpenError:
        return "degraded"
    except TimeoutError:
        logger.warning("readiness: %s did not answer within %.1f s", name, time_limit)
        return "failing"
    except Exception as error:  # any failure means "not ready"; the log says which one
        logger.warning("readiness: %s is failing: %s: %s", name, type(error).__name__, error)
        return "failing"
    return "ok"


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    """The process is up and serving; says nothing about its dependencies."""
    return Liveness(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
)
async def ready(
    response: Response, settings: SettingsDep, database: DatabaseDep, cache: CacheDep
) -> Readiness:
    """200 when the database and the cache answer; 503 naming each dependency that does not."""
    checks = {"database": database.ping, "cache": cache.ping}
    time_limit = settings.health_check_timeout_seconds
    results = await asyncio.gather(
        *(probe(name, check, time_limit) for name, check in checks.items())
    )
    statuses = dict(zip(checks, results, strict=True))
    failing = [name for name, result in statuses.items() if result != "ok"]
    response.headers["Cache-Control"] = "no-store"
    if failing:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="unavailable" if failing else "ok", checks=statuses, failing=failing)
