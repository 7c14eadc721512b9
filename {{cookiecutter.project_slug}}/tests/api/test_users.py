from collections.abc import Awaitable, Callable

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.auth import hash_token
from {{ cookiecutter.project_slug }}.db.models import User

from tests.conftest import bearer

pytestmark = pytest.mark.anyio


async def test_me_returns_the_caller_without_secret_fields(
    client: AsyncClient, make_user: Callable[[str], Awaitable[tuple[User, str]]]
) -> None:
    user, token = await make_user("carol")

    response = await client.get("/api/me", headers=bearer(token))

    assert response.status_code == 200
    assert set(response.json()) == {"id", "name", "scopes", "created_at"}
    assert (response.json()["id"], response.json()["name"]) == (user.id, "carol")
    assert token not in response.text
    assert user.token_hash not in response.text


async def test_tokens_are_stored_only_as_keyed_hashes(
    app: FastAPI, make_user: Callable[[str], Awaitable[tuple[User, str]]]
) -> None:
    _, token = await make_user("dave")

    async with app.state.database.sessionmaker() as session:
        stored = await session.scalar(select(User).where(User.name == "dave"))

    assert stored is not None
    assert token not in (stored.token_hash, stored.name)
    assert len(stored.token_hash) == 64


async def test_a_token_made_before_tokens_named_their_user_still_works(
    app: FastAPI, client: AsyncClient, make_user: Callable[[str], Awaitable[tuple[User, str]]]
) -> None:
    user, _ = await make_user("erin")
    legacy = "an-older-token-without-the-user-id"
    async with app.state.database.sessionmaker() as session:
        stored = await session.get_one(User, user.id)
        stored.token_hash = hash_token(legacy, app.state.settings.secret_key)
        await session.commit()

    answers = [await client.get("/api/me", headers=bearer(legacy)) for _ in range(2)]
    forged = await client.get("/api/me", headers=bearer(f"{user.id}.{legacy}"))

    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].json()["name"] == "erin"
    assert forged.status_code == 401  # naming the user is not knowing the token
