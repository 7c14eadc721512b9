"""What the lifespan gets from a cache backend module."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from {{ cookiecutter.project_slug }}.cache.store import CacheStore


@dataclass(frozen=True)
class CacheConnection:
    store: CacheStore
    # Raises unless the cache server answers; readiness probes call it.
    ping: Callable[[], Awaitable[None]]


def get_cache(request: Request) -> CacheConnection:
    """The cache connection the lifespan opened (dependency)."""
    cache: CacheConnection = request.app.state.cache
    return cache
