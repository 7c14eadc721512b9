"""Token scopes (a dependency factory) and maintenance mode (a blocking sync dependency)."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.auth import known_scopes, require_scope
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.users import create_user

from tests.conftest import SettingsFactory, bearer, running

pytestmark = pytest.mark.anyio

ITEMS_READ = "items:read"
ITEMS_WRITE = "items:write"


async def token_with(app: FastAPI, settings: Settings, name: str, scopes: list[str]) -> str:
    async with app.state.database.sessionmaker() as session:
        _, token = await create_user(session, name, settings, scopes)
        await session.commit()
    return token


async def test_a_read_only_token_reads_and_cannot_write(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    reader = bearer(await token_with(app, settings, "reader", [ITEMS_READ]))

    assert (await client.get("/api/items", headers=reader)).status_code == 200
    refused = await client.post("/api/items", json={"name": "x"}, headers=reader)

    assert refused.status_code == 403
    assert refused.json()["detail"] == "This token lacks the 'items:write' scope"
    assert refused.json()["request_id"] == refused.headers["X-Request-ID"]
    assert (await client.get("/api/me", headers=reader)).json()["scopes"] == [ITEMS_READ]


async def test_a_default_token_holds_every_scope_including_later_ones(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    # `*` is stored, not today's list: a resource added later is granted without a migration.
    assert (await client.get("/api/me", headers=alice)).json()["scopes"] == ["*"]
    created = await client.post("/api/items", json={"name": "x"}, headers=alice)
    assert created.status_code == 201
    assert (await client.get("/api/items", headers=alice)).status_code == 200


def test_every_table_users_own_has_a_read_and_a_write_scope() -> None:
    assert {ITEMS_READ, ITEMS_WRITE} <= set(known_scopes())
    assert all(scope.endswith((":read", ":write")) for scope in known_scopes())


def test_a_scope_no_token_can_hold_fails_at_import() -> None:
    with pytest.raises(ValueError, match="unknown scope 'item:read'"):
        require_scope("item:read")


async def test_a_write_only_token_cannot_read_items_even_from_the_cache(
    app: FastAPI, client: AsyncClient, settings: Settings, alice: dict[str, str]
) -> None:
    writer = bearer(await token_with(app, settings, "writer", [ITEMS_WRITE]))
    created = await client.post("/api/items", json={"name": "x"}, headers=writer)
    item_id = created.json()["id"]

    for path in ("/api/items", f"/api/items/{item_id}", "/api/items/export"):
        assert (await client.get(path, headers=writer)).status_code == 403, path
    # Other users' reads are unaffected.
    assert (await client.get("/api/items", headers=alice)).status_code == 200


async def test_maintenance_pauses_writes_and_keeps_reads(
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    alice: dict[str, str],
    tmp_path: Path,
) -> None:
    flag = tmp_path / "maintenance"
    async with running(make_app(make_settings(maintenance_file=flag))) as client:
        created = await client.post("/api/items", json={"name": "before"}, headers=alice)
        assert created.status_code == 201
        flag.touch()

        paused = [
            await client.post("/api/items", json={"name": "during"}, headers=alice),
            await client.put(
                f"/api/items/{created.json()['id']}", json={"name": "y"}, headers=alice
            ),
            await client.delete(f"/api/items/{created.json()['id']}", headers=alice),
        ]
        listed = await client.get("/api/items", headers=alice)
        flag.unlink()
        after = await client.post("/api/items", json={"name": "after"}, headers=alice)

    assert [response.status_code for response in paused] == [503, 503, 503]
    assert all(response.headers["Retry-After"] == "30" for response in paused)
    assert "maintenance" in paused[0].json()["detail"]
    assert [item["name"] for item in listed.json()] == ["before"]
    assert after.status_code == 201
