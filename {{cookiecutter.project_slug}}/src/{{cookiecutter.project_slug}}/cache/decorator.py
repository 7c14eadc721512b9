"""`@cached_response` and `@cached`: fastapi-cache2's `@cache`, with this project's keys and coder.

Put `@cached_response` directly under the route decorator, and give the route a
`response_model` equal to the function's return annotation: the coder serializes the result the
way FastAPI serializes that model, so the stored bytes are exactly the response body, which the
edge (edge.py) sends on later HITs without routing.

The wrappers add only what `@cache` lacks: the namespace's partition (per user or shared) for
the edge, one computation per key (flight.py) released even when the function raises, and an
`expire` read at call time (fastapi-cache2 freezes a defaulted `expire` at the first call).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast, get_type_hints

from fastapi import Request, Response
from fastapi_cache import FastAPICache
from fastapi_cache.coder import Coder
from fastapi_cache.decorator import cache
from fastapi_cache.types import KeyBuilder
from pydantic import TypeAdapter

from {{ cookiecutter.project_slug }}.cache import keys
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.flight import leading
from {{ cookiecutter.project_slug }}.schemas import UserRead

P = ParamSpec("P")
R = TypeVar("R")

# Used only when neither the decorator nor FastAPICache.init names a TTL.
DEFAULT_TTL_SECONDS = 60


@dataclass(frozen=True)
class CachePolicy:
    namespace: str
    per_user: bool
    # What the stored bytes serialize: the edge sends them only if this is the response model.
    returns: Any = None


def cache_policy(endpoint: object) -> CachePolicy | None:
    """The policy `@cached_response` gave a route's endpoint; None for an uncached route."""
    policy = getattr(endpoint, "cache_policy", None)
    return policy if isinstance(policy, CachePolicy) else None


def coder_for(return_type: Any) -> type[Coder]:
    """A coder that stores results as FastAPI sends them: JSON from the pydantic type."""
    adapter: TypeAdapter[Any] = TypeAdapter(return_type)

    class PydanticCoder(Coder):
        @classmethod
        def encode(cls, value: Any) -> bytes:
            return adapter.dump_json(value, by_alias=True)

        @classmethod
        def decode(cls, value: bytes) -> Any:
            return adapter.validate_json(value)

    return PydanticCoder


def response_key(policy: CachePolicy) -> KeyBuilder:
    """The key builder of a cached route: the key edge.py reads for the same request."""

    async def build(
        func: Callable[..., Any],
        namespace: str = "",
        *,
        request: Request | None = None,
        response: Response | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> str:
        if request is None:
            raise RuntimeError(f"{func.__name__} is cached as a route but was called without one")
        return key_for_request(policy, request, kwargs or {})

    return build


def key_for_request(policy: CachePolicy, request: Request, kwargs: dict[str, Any]) -> str:
    # The same cache object (and prefix) the edge reads with: app.state.cache.
    cache = request.app.state.cache
    if not policy.per_user:
        partition, token = keys.shared_partition(policy.namespace), ""
    else:
        caller = next((v for v in kwargs.values() if isinstance(v, UserRead)), None)
        if caller is None:
            raise RuntimeError(f"{request.url.path} is cached per user: it must depend on a user")
        partition = keys.user_partition(caller.id)
        token = keys.bearer_token(request.headers.get("authorization")) or ""
    namespace_key = keys.namespace_key(cache.prefix, partition, policy.namespace)
    return f"{namespace_key}:{keys.request_digest(request.scope, token)}"


# Arguments of these types (and tuples of them) are data that selects a result; anything else
# (a client, a session) says how to compute it and stays out of the key.
PLAIN = (str, int, float, bool, type(None))


def plain(value: object) -> bool:
    if isinstance(value, tuple):
        return all(plain(item) for item in value)
    return isinstance(value, PLAIN)


async def function_key(
    func: Callable[..., Any],
    namespace: str = "",
    *,
    request: Request | None = None,
    response: Response | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
) -> str:
    """A plain function's key: its shared namespace, its name and its plain-data arguments."""
    name = namespace.rpartition(":")[2]
    data = [repr(arg) for arg in args if plain(arg)]
    data += [f"{key}={value!r}" for key, value in sorted((kwargs or {}).items()) if plain(value)]
    namespace_key = keys.namespace_key(FastAPICache.get_prefix(), keys.shared_partition(name), name)
    return f"{namespace_key}:{keys.digest(func.__module__, func.__qualname__, *data)}"


def cached_call(
    function: Callable[..., Awaitable[Any]],
    namespace: str,
    expire: int | None,
    key_builder: KeyBuilder,
) -> Callable[..., Awaitable[Any]]:
    """`function` under fastapi-cache2's `@cache`, one wrapper per TTL, chosen at call time."""
    coder = coder_for(get_type_hints(function).get("return"))
    wrappers: dict[int, Callable[..., Awaitable[Any]]] = {}

    def wrapper_for(ttl: int) -> Callable[..., Awaitable[Any]]:
        if ttl not in wrappers:
            decorate = cache(expire=ttl, coder=coder, namespace=namespace, key_builder=key_builder)
            wrappers[ttl] = decorate(function)
        return wrappers[ttl]

    @wraps(wrapper_for(expire or DEFAULT_TTL_SECONDS))
    async def call(*args: Any, **kwargs: Any) -> Any:
        with leading() as led_keys:
            try:
                ttl = expire or FastAPICache.get_expire() or DEFAULT_TTL_SECONDS
                return await wrapper_for(ttl)(*args, **kwargs)
            finally:
                # If the function raised, nothing was stored: let the waiting calls go on.
                backend = FastAPICache.get_backend()
                for key in list(led_keys):
                    if isinstance(backend, ResponseCache):
                        await backend.release(key)

    return call


def cached_response(
    *, namespace: str, per_user: bool, expire: int | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R | Response]]]:
    """Cache a GET route's response in `namespace`; `per_user` when it depends on the caller.

    `expire` defaults to CACHE_TTL_SECONDS. Writes invalidate with `invalidate_on_commit`.
    """

    def decorate(endpoint: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Response]]:
        returns = get_type_hints(endpoint).get("return")
        policy = CachePolicy(namespace, per_user, returns)
        if isinstance(returns, type) and issubclass(returns, Response):
            # The stored bytes are the serialized return value; a Response object (status,
            # headers, media type) would not survive that.
            raise TypeError(
                f"{endpoint.__name__}: a cached route must return data for its response_model, "
                "not a Response"
            )
        call = cached_call(endpoint, namespace, expire, response_key(policy))
        call.cache_policy = policy  # type: ignore[attr-defined]
        # fastapi-cache2 may answer a route with a 304 Response instead of the result.
        return cast("Callable[P, Awaitable[R | Response]]", call)

    return decorate


def cached(
    *, namespace: str, expire: int | None = None
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Cache a plain async function's result, shared by every worker, in a shared namespace.

    Keyed by the function and its arguments (their repr); `clear(namespace=...)` on the backend
    invalidates it.
    """

    def decorate(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        # Without a request, fastapi-cache2 never answers with a Response (a 304).
        return cast(
            "Callable[P, Awaitable[R]]", cached_call(function, namespace, expire, function_key)
        )

    return decorate
