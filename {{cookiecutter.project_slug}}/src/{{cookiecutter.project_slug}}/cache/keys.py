"""Cache keys: the request's method, path and whole sorted query string, plus who asks.

fastapi-cache2's default key builder leaves undeclared query parameters out of the key and puts
dependency values in through repr(), so a session or client object adds a memory address (the
key never repeats). These builders read only the request, and hash it so keys stay bounded
however long the query string is.
"""

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from fastapi_cache.types import KeyBuilder

from {{ cookiecutter.project_slug }}.cache.guarded import UNCACHEABLE, guarded_backend
from {{ cookiecutter.project_slug }}.cache.http import canonical_query
from {{ cookiecutter.project_slug }}.cache.local import TICKET
from {{ cookiecutter.project_slug }}.schemas import UserRead


def user_scope(namespace: str, user_id: int) -> str:
    """The part of a namespace that belongs to one user; invalidated on that user's writes."""
    return f"{namespace}:user:{user_id}"


def request_digest(request: Request) -> str:
    query = canonical_query(request.scope["query_string"])
    canonical = f"{request.method} {request.url.path}?{query}"
    return hashlib.sha256(canonical.encode()).hexdigest()


async def versioned_key(scope: str, request: Request) -> str:
    backend = guarded_backend()
    # Taken before the version is read: an invalidation from now on voids the ticket.
    ticket = backend.local.ticket(scope) if backend.local is not None else None
    version = await backend.namespace_version(scope)
    if version == UNCACHEABLE:
        return f"{scope}{UNCACHEABLE}"
    if ticket is not None:
        setattr(request.state, TICKET, ticket)
    return f"{scope}:{version}:{request_digest(request)}"


def current_user(request: Request) -> UserRead:
    user = getattr(request.state, "user", None)
    if not isinstance(user, UserRead):
        raise RuntimeError("a per-user cached route must depend on CurrentUserDep")
    return user


def key_builder(scope: Callable[[str, Request], str]) -> KeyBuilder:
    """A fastapi-cache2 key builder for keys under `scope(namespace, request)`."""

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
            raise RuntimeError("cached routes need the request")
        return await versioned_key(scope(namespace, request), request)

    return build


# For responses that depend on the caller: the key includes the caller's user id.
per_user_key = key_builder(
    lambda namespace, request: user_scope(namespace, current_user(request).id)
)
# For responses that are the same for every caller.
shared_key = key_builder(lambda namespace, _request: namespace)
