"""What the lifespan gets from a cache backend module."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi_cache.types import Backend


@dataclass(frozen=True)
class CacheConnection:
    backend: Backend
    # Raises unless the cache server answers; readiness probes call it.
    ping: Callable[[], Awaitable[None]]


def get_cache(request: Request) -> CacheConnection:
    """The cache connection the lifespan opened (dependency)."""
    cache: CacheConnection = request.app.state.cache
    return cache
