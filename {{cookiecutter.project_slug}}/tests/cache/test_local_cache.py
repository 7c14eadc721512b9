"""Each worker's local copy of cached responses: fast, private to its token, never stale."""

from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.cache.guarded import guarded_backend
from {{ cookiecutter.project_slug }}.cache.local import LocalEntry, LocalResponseCache

from tests.conftest import bearer

pytestmark = pytest.mark.anyio

Headers = dict[str, str]


class CountingStore:
    """Passes every call to the real store and counts them."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.store, name)


@pytest.fixture
def counting_store(app: FastAPI) -> CountingStore:
    backend = guarded_backend()
    counting = CountingStore(backend.store)
    backend.store = counting
    return counting


async def test_a_repeated_request_is_answered_without_the_cache_store(
    client: AsyncClient, alice: Headers, counting_store: CountingStore
) -> None:
    first = await client.get("/api/items", headers=alice)
    second = await client.get("/api/items", headers=alice)
    counting_store.calls.clear()

    repeats = [await client.get("/api/items", headers=alice) for _ in range(5)]

    assert sum(counting_store.calls.values()) == 0
    assert (first.headers["x-fastapi-cache"], second.headers["x-fastapi-cache"]) == ("MISS", "HIT")
    for repeat in repeats:
        assert repeat.content == first.content
        assert repeat.headers["x-fastapi-cache"] == "HIT"
        for name in ("etag", "content-type", "vary"):
            assert repeat.headers[name] == first.headers[name], name
        assert repeat.headers["cache-control"].startswith("private, max-age=")
    # Each response still has its own request id.
    assert len({response.headers["x-request-id"] for response in repeats}) == 5


async def test_a_local_hit_answers_if_none_match_with_304(
    client: AsyncClient, alice: Headers
) -> None:
    etag = (await client.get("/api/items", headers=alice)).headers["etag"]
    await client.get("/api/items", headers=alice)

    response = await client.get("/api/items", headers={**alice, "If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""


async def test_the_copy_is_only_for_the_token_that_filled_it(
    client: AsyncClient, alice: Headers, bob: Headers
) -> None:
    await client.post("/api/items", json={"name": "alice's"}, headers=alice)
    for _ in range(3):
        await client.get("/api/items", headers=alice)

    as_bob = await client.get("/api/items", headers=bob)
    forged = await client.get("/api/items", headers=bearer("not-a-real-token"))
    basic = await client.get("/api/items", headers={"Authorization": "Basic YWxpY2U6eA=="})
    anonymous = await client.get("/api/items")

    assert as_bob.json() == []
    assert [response.status_code for response in (forged, basic, anonymous)] == [401] * 3


async def test_a_write_drops_the_writers_copies_before_its_response(
    client: AsyncClient, alice: Headers
) -> None:
    for _ in range(3):
        await client.get("/api/items", headers=alice)

    await client.post("/api/items", json={"name": "new"}, headers=alice)
    after = await client.get("/api/items", headers=alice)

    assert [item["name"] for item in after.json()] == ["new"]
    assert after.headers["x-fastapi-cache"] == "MISS"


async def test_a_revoked_token_is_not_answered_from_the_copy(
    client: AsyncClient, alice: Headers
) -> None:
    for _ in range(3):
        assert (await client.get("/api/me", headers=alice)).status_code == 200

    assert (await client.delete("/api/me/token", headers=alice)).status_code == 204

    assert (await client.get("/api/me", headers=alice)).status_code == 401


async def test_a_revocation_reaches_copies_filled_with_odd_header_spacing(
    client: AsyncClient, alice: Headers
) -> None:
    spaced = {"Authorization": alice["Authorization"].replace(" ", "   ") + "  "}
    for _ in range(3):
        assert (await client.get("/api/me", headers=spaced)).status_code == 200

    assert (await client.delete("/api/me/token", headers=alice)).status_code == 204

    assert (await client.get("/api/me", headers=spaced)).status_code == 401


async def test_no_store_goes_past_the_copy(client: AsyncClient, alice: Headers) -> None:
    for _ in range(3):
        await client.get("/api/items", headers=alice)

    response = await client.get("/api/items", headers={**alice, "Cache-Control": "no-store"})

    assert response.status_code == 200
    assert "x-fastapi-cache" not in response.headers


def make_local(max_bytes: int = 1000) -> LocalResponseCache:
    local = LocalResponseCache(max_bytes, max_lifetime_seconds=60, token_hash=str.upper)
    local.connected()
    return local


def entry(body: bytes = b"x", scope: str = "items:user:1", owner: str = "T") -> LocalEntry:
    return LocalEntry([], "max-age=60", '"e"', body, 100.0, scope, owner)


def test_a_request_that_began_before_an_invalidation_stores_nothing() -> None:
    local = make_local()
    ticket = local.ticket("items:user:1")
    assert ticket is not None

    local.apply("scope:items:user:1")  # a write committed while the request was running
    local.put(("T", "/api/items", ""), entry(), ticket)

    assert len(local) == 0


def test_entries_are_dropped_by_scope_by_token_and_on_disconnect() -> None:
    local = make_local()
    for number, (scope, token) in enumerate([("a", "T1"), ("b", "T1"), ("b", "T2")]):
        ticket = local.ticket(scope)
        assert ticket is not None
        local.put((token, f"/{number}", ""), entry(scope=scope, owner=token), ticket)

    local.apply("scope:a")
    assert len(local) == 2
    local.apply("token:T1")
    assert len(local) == 1
    local.disconnected()
    assert len(local) == 0
    assert local.ticket("b") is None  # nothing is stored while messages may be missed


def test_the_copy_stays_within_its_byte_budget_and_expires() -> None:
    local = make_local(max_bytes=1000)
    for number in range(30):
        ticket = local.ticket("s")
        assert ticket is not None
        local.put(("T", f"/{number}", ""), entry(body=b"x" * 50), ticket)

    assert len(local) == 20  # 20 x 50 bytes: the least recently used went first
    assert local.get(("T", "/29", ""), now=99.0) is not None
    assert local.get(("T", "/29", ""), now=100.0) is None  # expired
    big = local.ticket("s")
    assert big is not None
    local.put(("T", "/big", ""), entry(body=b"x" * 100), big)  # over 1/16 of the budget
    assert local.get(("T", "/big", ""), now=0.0) is None
