import json

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select

from {{ cookiecutter.project_slug }}.api.items import EXPORT_BATCH_SIZE
from {{ cookiecutter.project_slug }}.db.models import Item

from tests.conftest import MakeUser, bearer

pytestmark = pytest.mark.anyio


async def test_create_read_replace_delete(client: AsyncClient, alice: dict[str, str]) -> None:
    created = await client.post(
        "/api/items", json={"name": "lamp", "description": "desk lamp"}, headers=alice
    )
    assert created.status_code == 201
    item = created.json()
    assert {"id", "name", "description", "created_at", "updated_at"} <= set(item)
    assert (item["name"], item["description"]) == ("lamp", "desk lamp")
    url = f"/api/items/{item['id']}"

    assert (await client.get(url, headers=alice)).json() == item
    assert (await client.get("/api/items", headers=alice)).json() == [item]

    replaced = await client.put(url, json={"name": "lamp 2", "description": None}, headers=alice)
    assert replaced.status_code == 200
    assert (replaced.json()["name"], replaced.json()["description"]) == ("lamp 2", None)
    assert (await client.get(url, headers=alice)).json()["name"] == "lamp 2"

    assert (await client.delete(url, headers=alice)).status_code == 204
    assert (await client.get(url, headers=alice)).status_code == 404
    assert (await client.get("/api/items", headers=alice)).json() == []


async def test_items_of_other_users_are_invisible(
    client: AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    created = await client.post("/api/items", json={"name": "alice's"}, headers=alice)
    url = f"/api/items/{created.json()['id']}"

    assert (await client.get(url, headers=bob)).status_code == 404
    assert (await client.put(url, json={"name": "taken"}, headers=bob)).status_code == 404
    assert (await client.delete(url, headers=bob)).status_code == 404
    assert (await client.get("/api/items", headers=bob)).json() == []
    assert (await client.get(url, headers=alice)).json()["name"] == "alice's"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YWxpY2U6eA=="}],
    ids=["missing", "unknown-token", "wrong-scheme"],
)
async def test_calls_without_a_valid_token_get_401(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for method, url in [("GET", "/api/items"), ("POST", "/api/items"), ("GET", "/api/me")]:
        response = await client.request(method, url, headers=headers, json={"name": "x"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": "ok", "description": "x" * 2001},
        {"name": "ok", "owner_id": 1},
        {"name": 5},
        {"name": "nul\u0000inside"},
        {"name": "ok", "description": "nul\u0000inside"},
    ],
    ids=[
        "missing-name",
        "empty-name",
        "long-name",
        "long-description",
        "extra-field",
        "number",
        "nul-in-name",
        "nul-in-description",
    ],
)
async def test_invalid_bodies_get_422_and_write_nothing(
    app: FastAPI, client: AsyncClient, alice: dict[str, str], body: dict[str, object]
) -> None:
    response = await client.post("/api/items", json=body, headers=alice)

    assert response.status_code == 422
    async with app.state.database.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Item)) == 0


@pytest.mark.parametrize("item_id", ["0", "-1", str(2**31), "99999999999999999999999", "abc"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_impossible_item_id_is_a_422_on_every_database(
    client: AsyncClient, alice: dict[str, str], method: str, item_id: str
) -> None:
    body = {"name": "x"} if method == "PUT" else None

    response = await client.request(method, f"/api/items/{item_id}", json=body, headers=alice)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "item_id"]


async def test_list_is_paginated_in_creation_order(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    for number in range(5):
        await client.post("/api/items", json={"name": f"item {number}"}, headers=alice)

    page = await client.get("/api/items", params={"limit": 2, "offset": 1}, headers=alice)

    assert [item["name"] for item in page.json()] == ["item 1", "item 2"]
    too_many = await client.get("/api/items", params={"limit": 501}, headers=alice)
    assert too_many.status_code == 422


async def test_export_streams_every_item_across_batches(
    app: FastAPI, client: AsyncClient, make_user: MakeUser
) -> None:
    user, token = await make_user("exporter")
    count = EXPORT_BATCH_SIZE * 2 + 7
    async with app.state.database.sessionmaker() as session:
        session.add_all(Item(owner_id=user.id, name=f"item {n}") for n in range(count))
        await session.commit()

    response = await client.get("/api/items/export", headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    names = [json.loads(line)["name"] for line in response.text.splitlines()]
    assert names == [f"item {n}" for n in range(count)]
    assert app.state.database.engine.pool.checkedout() == 0
