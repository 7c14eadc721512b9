"""What the lifespan gets from a cache backend module."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from fastapi import Request

from {{ cookiecutter.project_slug }}.auth import hash_token
from {{ cookiecutter.project_slug }}.cache.local import LocalResponseCache
from {{ cookiecutter.project_slug }}.cache.store import CacheStore, Invalidations
from {{ cookiecutter.project_slug }}.settings import Settings


@dataclass(frozen=True)
class CacheConnection:
    store: CacheStore
    # Raises unless the cache server answers; readiness probes call it.
    ping: Callable[[], Awaitable[None]]
    # The worker's local copy of cached responses, kept coherent through `invalidations`;
    # None for a backend that cannot tell the other workers what to drop.
    local: LocalResponseCache | None = None
    invalidations: Invalidations | None = None


def local_response_cache(max_bytes: int, settings: Settings) -> LocalResponseCache | None:
    """A worker's local copy of cached responses, for a backend that can keep it coherent."""
    if not max_bytes:
        return None
    return LocalResponseCache(
        max_bytes,
        settings.auth_cache_ttl_seconds,
        partial(hash_token, secret_key=settings.secret_key),
    )


async def get_cache(request: Request) -> CacheConnection:
    """The cache connection the lifespan opened (dependency)."""
    cache: CacheConnection = request.app.state.cache
    return cache
