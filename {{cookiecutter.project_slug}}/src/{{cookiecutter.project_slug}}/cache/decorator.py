"""`@cached_response`: fastapi-cache2's `@cache` with this project's keys and guarantees.

Put it directly under the route decorator, and always give the route a `response_model`:
with only a return annotation, fastapi-cache2 drops the model, so responses would leak fields
the model filters out.
"""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar, get_type_hints

from fastapi import Response
from fastapi_cache import FastAPICache
from fastapi_cache.coder import JsonCoder
from fastapi_cache.decorator import cache

from {{ cookiecutter.project_slug }}.cache.guarded import guarded_backend, led_keys
from {{ cookiecutter.project_slug }}.cache.keys import per_user_key, shared_key

P = ParamSpec("P")
R = TypeVar("R")

# Used only when neither the route nor FastAPICache.init names a TTL.
DEFAULT_TTL_SECONDS = 60


def cached_response(
    *, namespace: str, per_user: bool, expire: int | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R | Response]]]:
    """Cache a GET route's response in `namespace`; `per_user` when it depends on the caller.

    `expire` defaults to CACHE_TTL_SECONDS. Writes invalidate with `invalidate_after_commit`.
    """
    key_builder = per_user_key if per_user else shared_key

    def decorate(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Response]]:
        returns = get_type_hints(endpoint).get("return")
        if isinstance(returns, type) and issubclass(returns, Response):
            # fastapi-cache2 stores the encoded return value and rebuilds it on a HIT; a
            # Response object (status, headers, media type) does not survive that.
            raise TypeError(
                f"{endpoint.__name__}: a cached route must return data for its response_model, "
                "not a Response"
            )
        # fastapi-cache2 replaces an omitted expire (or coder) with the configured default on the
        # first call and keeps it for good, so a later FastAPICache.init with another TTL (a
        # second app, a test) would be ignored. One wrapper per TTL, chosen at call time, avoids
        # that; all of them present the same signature to FastAPI.
        wrappers: dict[int, Callable[P, Awaitable[R | Response]]] = {}

        def wrapper_for(ttl: int) -> Callable[P, Awaitable[R | Response]]:
            if ttl not in wrappers:
                wrappers[ttl] = cache(
                    expire=ttl, coder=JsonCoder, namespace=namespace, key_builder=key_builder
                )(endpoint)
            return wrappers[ttl]

        @wraps(wrapper_for(expire or DEFAULT_TTL_SECONDS))
        async def run(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            token = led_keys.set(set())
            try:
                ttl = expire or FastAPICache.get_expire() or DEFAULT_TTL_SECONDS
                return await wrapper_for(ttl)(*args, **kwargs)
            finally:
                # If the endpoint raised, nothing was cached: let waiting requests go on.
                await guarded_backend().release_led_keys()
                led_keys.reset(token)

        return run

    return decorate
