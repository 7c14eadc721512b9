"""A namespace shared by every caller: one cached answer for all, fresh after every write."""

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.anyio


async def test_one_cached_answer_serves_every_caller(
    client: AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    anonymous = await client.get("/api/stats")
    as_alice = await client.get("/api/stats", headers=alice)
    as_bob = await client.get("/api/stats", headers=bob)

    assert anonymous.json() == {"users": 2, "items": 0}
    assert [r.headers["x-fastapi-cache"] for r in (anonymous, as_alice, as_bob)] == [
        "MISS",
        "HIT",
        "HIT",
    ]
    assert anonymous.content == as_alice.content == as_bob.content


async def test_item_writes_invalidate_the_shared_answer(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    assert (await client.get("/api/stats")).json()["items"] == 0

    created = await client.post("/api/items", json={"name": "lamp"}, headers=alice)
    after_create = await client.get("/api/stats")
    await client.delete(f"/api/items/{created.json()['id']}", headers=alice)
    after_delete = await client.get("/api/stats")

    assert after_create.json()["items"] == 1
    assert after_delete.json()["items"] == 0
