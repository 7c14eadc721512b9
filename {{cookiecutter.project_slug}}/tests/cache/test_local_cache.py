"""Each worker's local tier of cached responses: fast, private to its token, never stale."""

import time
from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.cache.entries import Entry
from {{ cookiecutter.project_slug }}.cache.local import LocalTier
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, bearer, wait_until

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
def settings(make_settings: SettingsFactory) -> Settings:
    """Local copies on, with a lease a loaded test machine keeps renewing in time."""
    return make_settings(local_cache_max_bytes=1024 * 1024, local_cache_lease_seconds=1.0)


@pytest.fixture(autouse=True)
async def local_copies_in_use(app: FastAPI) -> None:
    await wait_until(app.state.cache.local.usable)


@pytest.fixture
def counting_store(app: FastAPI) -> CountingStore:
    cache = app.state.cache
    counting = CountingStore(cache.store)
    cache.store = counting
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


def make_local(max_bytes: int = 1000) -> LocalTier:
    local = LocalTier(max_bytes, lease_seconds=3600)
    local.connected()
    local.confirm(time.monotonic())
    return local


def entry(body: bytes = b"x", version: int = 1, expires_at: float = 100.0) -> Entry:
    return Entry(version, expires_at, '"e"', body)


def read(state_key: str, response: Entry | None = None) -> list[tuple[str, Entry]]:
    """What a shared read found: the caller's identity, then the response in `state_key`."""
    return [("user:1:identity:state", entry()), (state_key, response or entry())]


def test_a_read_that_began_before_an_invalidation_keeps_nothing() -> None:
    local = make_local()
    generation = local.generation

    local.forget("items:state")  # a write committed while the read was on its way
    local.keep(generation, "/items", read("items:state"))

    assert local.get("/items", now=0.0) is None


def test_entries_are_dropped_with_their_version_and_on_disconnect() -> None:
    local = make_local()
    for state in ("a:state", "b:state"):
        local.keep(local.generation, f"/{state}", read(state))

    local.forget("a:state")
    assert local.get("/a:state", now=0.0) is None
    assert local.get("/b:state", now=0.0) is not None
    local.disconnected()
    assert local.get("/b:state", now=0.0) is None
    local.keep(local.generation, "/b:state", read("b:state"))
    assert local.get("/b:state", now=0.0) is None  # nothing kept while offline


def test_a_copy_is_dropped_with_the_identity_it_was_read_with() -> None:
    local = make_local()
    local.keep(local.generation, "/items", read("items:state"))

    local.forget("user:1:identity:state")  # the token was revoked

    assert local.get("/items", now=0.0) is None


def test_the_tier_stays_within_its_byte_budget_and_expires() -> None:
    local = make_local(max_bytes=1000)
    for number in range(30):
        local.keep(local.generation, f"/{number}", read("s", entry(body=b"x" * 50)))

    assert len(local.copies) == 20  # 20 x 50 bytes: the least recently used went first
    assert local.get("/29", now=99.0) is not None
    assert local.get("/29", now=100.0) is None  # expired
    local.keep(local.generation, "/big", read("s", entry(body=b"x" * 100)))  # over 1/16
    assert local.get("/big", now=0.0) is None


def test_a_copy_expires_with_the_identity_it_was_read_with() -> None:
    local = make_local()
    response = entry(expires_at=100.0)
    local.keep(local.generation, "/1", [("id:state", entry(expires_at=50.0)), ("s", response)])

    assert local.get("/1", now=49.0) is response
    assert local.get("/1", now=50.0) is None


def test_nothing_is_served_once_the_lease_lapses() -> None:
    local = make_local()
    local.keep(local.generation, "/1", read("s"))
    assert local.get("/1", now=0.0) is not None

    local.confirmed_at = time.monotonic() - local.lease_seconds  # no answer for a whole lease

    assert local.get("/1", now=0.0) is None
