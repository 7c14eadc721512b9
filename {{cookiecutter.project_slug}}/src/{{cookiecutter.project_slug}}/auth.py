"""API tokens: random, shown once, stored only as an HMAC keyed with SECRET_KEY.

The caller's identity is cached in the cache backend for AUTH_CACHE_TTL_SECONDS, so most
requests skip the users table; revoking a token deletes that entry at once.
"""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_cache import FastAPICache
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.cache.guarded import guarded_backend
from {{ cookiecutter.project_slug }}.db.models import User
from {{ cookiecutter.project_slug }}.db.session import SessionDep
from {{ cookiecutter.project_slug }}.schemas import UserRead
from {{ cookiecutter.project_slug }}.settings import SettingsDep

bearer_scheme = HTTPBearer(auto_error=False, description="The API token from `create-user`")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str, secret_key: SecretStr) -> str:
    """Tokens carry 256 random bits, so a keyed hash (no slow KDF) is enough and allows lookup."""
    key = secret_key.get_secret_value().encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def identity_cache_key(token_hash: str) -> str:
    return f"{FastAPICache.get_prefix()}:auth:{token_hash}"


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def cached_identity(token_hash: str) -> UserRead | None:
    cached = await guarded_backend().get(identity_cache_key(token_hash))
    if cached is None:
        return None
    try:
        return UserRead.model_validate_json(cached)
    except ValidationError:
        return None  # written by an older version of the schema: look the user up again


async def get_current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    session: SessionDep,
    settings: SettingsDep,
) -> UserRead:
    """The caller named by `Authorization: Bearer <token>`; 401 without a valid token.

    Also kept on `request.state.user`, where per-user cache keys read it.
    """
    if credentials is None:
        raise unauthorized("Not authenticated")
    token_hash = hash_token(credentials.credentials, settings.secret_key)
    user = await cached_identity(token_hash)
    if user is None:
        found = await session.scalar(select(User).where(User.token_hash == token_hash))
        if found is None:
            raise unauthorized("Invalid token")
        user = UserRead.model_validate(found)
        await guarded_backend().set(
            identity_cache_key(token_hash),
            user.model_dump_json().encode(),
            expire=settings.auth_cache_ttl_seconds,
        )
    request.state.user = user
    return user


CurrentUserDep = Annotated[UserRead, Depends(get_current_user)]


def require_scope(scope: str) -> Callable[[UserRead], Awaitable[UserRead]]:
    """A dependency factory: `Depends(require_scope("items:write"))` is the caller, if allowed.

    Each call builds a new dependency; the user lookup underneath is still done once per
    request, because every checker depends on the same `get_current_user`.
    """

    async def caller_with_scope(user: CurrentUserDep) -> UserRead:
        if scope not in user.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"This token lacks the {scope!r} scope"
            )
        return user

    return caller_with_scope
