"""Creating users: shared by the CLI and the tests."""

import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.auth import hash_token, new_token
from {{ cookiecutter.project_slug }}.db.models import User
from {{ cookiecutter.project_slug }}.scopes import EVERY_SCOPE, join_scopes
from {{ cookiecutter.project_slug }}.settings import Settings


class UserExistsError(Exception):
    pass


async def create_user(
    session: AsyncSession,
    name: str,
    settings: Settings,
    scopes: Sequence[str] = (EVERY_SCOPE,),
) -> tuple[User, str]:
    """Add a user and return it with its API token; the token is not stored and not shown again.

    By default the user holds every scope, those of resources added later included.
    """
    if await session.scalar(select(User.id).where(User.name == name)) is not None:
        raise UserExistsError(f"a user named {name!r} already exists")
    # The token names its user (new_token), so the user needs its id first; until then its
    # hash is one of a token nobody knows.
    user = User(
        name=name,
        token_hash=hash_token(secrets.token_urlsafe(32), settings.secret_key),
        scopes=join_scopes(scopes),
    )
    session.add(user)
    await session.flush()
    token = new_token(user.id)
    user.token_hash = hash_token(token, settings.secret_key)
    await session.flush()
    return user, token
