"""API tokens: random, shown once, stored only as an HMAC keyed with SECRET_KEY."""

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.db.models import User
from {{ cookiecutter.project_slug }}.db.session import SessionDep
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

bearer_scheme = HTTPBearer(auto_error=False, description="The API token from `create-user`")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str, secret_key: SecretStr) -> str:
    """Tokens carry 256 random bits, so a keyed hash (no slow KDF) is enough and allows lookup."""
    key = secret_key.get_secret_value().encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    session: SessionDep,
    settings: Annotated[Settings, Depends(get_settings)],
) -> User:
    """The caller named by `Authorization: Bearer <token>`; 401 without a valid token."""
    if credentials is None:
        raise unauthorized("Not authenticated")
    token_hash = hash_token(credentials.credentials, settings.secret_key)
    user = await session.scalar(select(User).where(User.token_hash == token_hash))
    if user is None:
        raise unauthorized("Invalid token")
    return user
