"""API tokens: random, shown once, stored only as an HMAC keyed with SECRET_KEY.

The caller's identity is cached for AUTH_CACHE_TTL_SECONDS in the caller's partition of the
cache (cache/keys.py), so most requests skip the users table. Revoking a token is a write like
any other (cache/invalidation.py): once it answers 2xx, the token is refused on every worker.
"""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.cache import keys
from {{ cookiecutter.project_slug }}.cache.backend import CacheDep
from {{ cookiecutter.project_slug }}.db.models import User, owned_tables
from {{ cookiecutter.project_slug }}.db.session import SessionDep
from {{ cookiecutter.project_slug }}.schemas import UserRead
from {{ cookiecutter.project_slug }}.scopes import grants, resource_scopes
from {{ cookiecutter.project_slug }}.settings import SettingsDep

bearer_scheme = HTTPBearer(auto_error=False, description="The API token from `create-user`")


def new_token(user_id: int) -> str:
    """`<user id>.<256 random bits>`: the id only says where to look (cache/keys.py)."""
    return f"{user_id}.{secrets.token_urlsafe(32)}"


def hash_token(token: str, secret_key: SecretStr) -> str:
    """Tokens carry 256 random bits, so a keyed hash (no slow KDF) is enough and allows lookup.

    Computed only when the users table is asked: the cache finds a token's user by its digest
    (identity_key), which is cheaper and needs no key.
    """
    key = secret_key.get_secret_value().encode()
    return hmac.digest(key, token.encode(), hashlib.sha256).hex()


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    session: SessionDep,
    cache: CacheDep,
    settings: SettingsDep,
) -> UserRead:
    """The caller named by `Authorization: Bearer <token>`; 401 without a valid token."""
    if credentials is None:
        raise unauthorized("Not authenticated")
    token = credentials.credentials
    # The token names its user's partition, so the cached identity is read, with its version,
    # before the database is asked: a revocation committed since then voids what is stored.
    user_id = keys.token_owner(token)
    cached, version = None, None
    if user_id is not None:
        cached, version = await cache.lookup(keys.identity_key(cache.prefix, user_id, token))
    if cached is not None:
        try:
            return UserRead.model_validate_json(cached.body)
        except ValidationError:
            pass  # written by an older version of the schema: look the user up again
    # A token without the id (made before tokens named their user) still works, uncached.
    token_hash = hash_token(token, settings.secret_key)
    found = await session.scalar(select(User).where(User.token_hash == token_hash))
    if found is None:
        raise unauthorized("Invalid token")
    user = UserRead.model_validate(found)
    if version is not None:
        await cache.store_entry(
            keys.identity_key(cache.prefix, user.id, token),
            version,
            user.model_dump_json().encode(),
            settings.auth_cache_ttl_seconds,
        )
    return user


CurrentUserDep = Annotated[UserRead, Depends(get_current_user)]


def known_scopes() -> list[str]:
    """Every scope a token can be given: reading and writing each table users own."""
    return [scope for table in owned_tables() for scope in resource_scopes(table)]


def require_scope(scope: str) -> Callable[[UserRead], Awaitable[UserRead]]:
    """A dependency factory: `Depends(require_scope("items:write"))` is the caller, if allowed.

    Each call builds a new dependency; the user lookup underneath is still done once per
    request, because every checker depends on the same `get_current_user`. A scope no token
    can be given (a typo, or a table that is not an OwnedRecord) fails at import.
    """
    if scope not in known_scopes():
        raise ValueError(f"unknown scope {scope!r}; the scopes are {', '.join(known_scopes())}")

    async def caller_with_scope(user: CurrentUserDep) -> UserRead:
        if not grants(user.scopes, scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"This token lacks the {scope!r} scope"
            )
        return user

    return caller_with_scope
