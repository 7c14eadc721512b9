"""Cached responses: correct for every caller, fresh after every write, same on every worker."""

import asyncio
import logging
from collections.abc import Callable

import anyio
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from httpx import AsyncClient, Response
from pydantic import BaseModel
from sqlalchemy import event

from {{ cookiecutter.project_slug }}.cache import {{ cookiecutter.cache_backend }} as store_module
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.cache.decorator import cached_response
from {{ cookiecutter.project_slug }}.cache.edge import EdgeCacheMiddleware
from {{ cookiecutter.project_slug }}.cache.entries import State
from {{ cookiecutter.project_slug }}.cache.keys import namespace_key
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import SettingsFactory, running

pytestmark = pytest.mark.anyio

Headers = dict[str, str]


def cache_status(response: Response) -> str | None:
    status: str | None = response.headers.get("x-fastapi-cache")
    return status


async def create_item(client: AsyncClient, headers: Headers, name: str = "lamp") -> int:
    response = await client.post("/api/items", json={"name": name}, headers=headers)
    assert response.status_code == 201
    item_id: int = response.json()["id"]
    return item_id


@pytest.mark.parametrize("path", ["/api/items", "/api/items/{item_id}", "/api/me"])
async def test_a_hit_returns_exactly_what_the_miss_returned(
    client: AsyncClient, alice: Headers, path: str
) -> None:
    url = path.format(item_id=await create_item(client, alice))

    miss = await client.get(url, headers=alice)
    hit = await client.get(url, headers=alice)

    assert (cache_status(miss), cache_status(hit)) == ("MISS", "HIT")
    assert (miss.status_code, miss.content) == (hit.status_code, hit.content) == (200, miss.content)
    assert miss.headers["etag"] == hit.headers["etag"]
    assert miss.headers["etag"].startswith('"')
    assert miss.headers["etag"].endswith('"')
    for response in (miss, hit):
        assert response.headers["cache-control"].startswith("private, max-age=")
        assert "Authorization" in response.headers["vary"]


async def test_no_secret_field_on_a_miss_or_a_hit(client: AsyncClient, alice: Headers) -> None:
    for expected in ("MISS", "HIT"):
        response = await client.get("/api/me", headers=alice)
        assert cache_status(response) == expected
        assert set(response.json()) == {"id", "name", "scopes", "created_at"}
        assert "token" not in response.text


async def test_every_write_invalidates_the_writers_items(
    client: AsyncClient, alice: Headers
) -> None:
    assert (await client.get("/api/items", headers=alice)).json() == []
    item_id = await create_item(client, alice, "first")

    listed = await client.get("/api/items", headers=alice)
    assert cache_status(listed) == "MISS"
    assert [item["name"] for item in listed.json()] == ["first"]
    url = f"/api/items/{item_id}"
    assert cache_status(await client.get(url, headers=alice)) == "MISS"
    assert cache_status(await client.get(url, headers=alice)) == "HIT"

    await client.put(url, json={"name": "renamed"}, headers=alice)
    assert (await client.get(url, headers=alice)).json()["name"] == "renamed"
    assert (await client.get("/api/items", headers=alice)).json()[0]["name"] == "renamed"

    await client.delete(url, headers=alice)
    assert (await client.get(url, headers=alice)).status_code == 404
    assert (await client.get("/api/items", headers=alice)).json() == []


async def test_a_write_leaves_other_namespaces_and_other_users_cached(
    client: AsyncClient, alice: Headers, bob: Headers
) -> None:
    for headers in (alice, bob):
        await client.get("/api/items", headers=headers)
    await client.get("/api/me", headers=alice)

    await create_item(client, alice)

    assert cache_status(await client.get("/api/items", headers=bob)) == "HIT"
    assert cache_status(await client.get("/api/me", headers=alice)) == "HIT"
    assert cache_status(await client.get("/api/items", headers=alice)) == "MISS"


async def test_invalidating_a_namespace_leaves_a_sibling_with_a_longer_name(app: FastAPI) -> None:
    cache: ResponseCache = app.state.cache
    states = [f"{namespace_key(cache.prefix, 'shared', name)}:state" for name in ("a", "a2")]
    for state in states:
        await cache.end_write(state)
    before = [State.parse(value) for value in await cache.read(states)]

    await cache.begin_write(states[0])
    await cache.end_write(states[0])

    after = [State.parse(value) for value in await cache.read(states)]
    assert after[0] != before[0]
    assert after[1] == before[1]


async def test_a_mark_left_by_a_write_that_never_ended_lapses_while_writes_go_on(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "PENDING_WRITE_SECONDS", 1)
    cache: ResponseCache = app.state.cache
    state = f"{namespace_key(cache.prefix, 'shared', 'marks')}:state"
    await cache.begin_write(state)  # its process died before the commit

    with anyio.fail_after(10):
        # Polled: the mark lapses on the cache server's clock.
        while True:  # other writes keep coming, one every 0.2 s
            await cache.begin_write(state)
            await cache.end_write(state)
            settled = State.parse((await cache.read([state]))[0])
            if settled is not None and settled.current() is not None:
                break
            await anyio.sleep(0.2)


async def test_every_query_parameter_is_part_of_the_key(
    client: AsyncClient, alice: Headers
) -> None:
    await client.get("/api/items", headers=alice)

    undeclared = await client.get("/api/items", params={"unknown": "1"}, headers=alice)
    assert cache_status(undeclared) == "MISS"
    assert cache_status(await client.get("/api/items?b=2&a=1", headers=alice)) == "MISS"
    assert cache_status(await client.get("/api/items?a=1&b=2", headers=alice)) == "HIT"


async def test_a_user_never_receives_another_users_cached_response(
    client: AsyncClient, alice: Headers, bob: Headers
) -> None:
    await create_item(client, alice, "alice's secret")
    assert cache_status(await client.get("/api/items", headers=alice)) == "MISS"

    bobs = await client.get("/api/items", headers=bob)

    assert cache_status(bobs) == "MISS"
    assert bobs.json() == []
    assert "alice" not in (await client.get("/api/me", headers=bob)).text


async def test_etags_agree_across_app_instances_and_answer_304(
    make_app: Callable[[Settings], FastAPI], settings: Settings, alice: Headers
) -> None:
    responses = []
    for _ in range(2):  # two instances, as two workers would be
        app = make_app(settings)
        async with running(app) as client:
            responses.append(await client.get("/api/me", headers=alice))
            etag = responses[0].headers["etag"]
            not_modified = await client.get("/api/me", headers=alice | {"If-None-Match": etag})
            weak = await client.get("/api/me", headers=alice | {"If-None-Match": f"W/{etag}"})
            other = await client.get("/api/me", headers=alice | {"If-None-Match": '"other"'})
            assert (not_modified.status_code, not_modified.content) == (304, b"")
            assert not_modified.headers["etag"] == etag
            assert weak.status_code == 304
            assert other.status_code == 200

    assert responses[0].headers["etag"] == responses[1].headers["etag"]


async def test_no_store_bypasses_the_cache_and_no_cache_does_not(
    client: AsyncClient, alice: Headers
) -> None:
    await client.get("/api/me", headers=alice)

    bypassed = await client.get("/api/me", headers=alice | {"Cache-Control": "max-age=0, no-store"})
    no_cache = await client.get("/api/me", headers=alice | {"Cache-Control": "no-cache"})
    # The directive in a second Cache-Control header counts too.
    two_headers = [("Cache-Control", "max-age=0"), ("Cache-Control", "no-store")]
    second = await client.get("/api/me", headers=[*alice.items(), *two_headers])

    assert bypassed.status_code == 200
    assert cache_status(bypassed) is None
    assert cache_status(second) is None
    assert cache_status(no_cache) == "HIT"


async def test_entries_expire_after_their_ttl(
    make_app: Callable[[Settings], FastAPI], make_settings: SettingsFactory, alice: Headers
) -> None:
    app = make_app(make_settings(cache_ttl_seconds=1))
    async with running(app) as client:
        assert cache_status(await client.get("/api/items", headers=alice)) == "MISS"
        assert cache_status(await client.get("/api/items", headers=alice)) == "HIT"
        # Gone within a few seconds of its 1 s TTL: the shared entry and every local copy.
        with anyio.fail_after(5):
            # Polled: expiry is the cache server's doing, with no event to wait on.
            while cache_status(await client.get("/api/items", headers=alice)) == "HIT":  # noqa: ASYNC110
                await anyio.sleep(0.05)


async def test_concurrent_cold_requests_run_the_body_once(
    make_app: Callable[[Settings], FastAPI], settings: Settings
) -> None:
    runs = 0
    router = APIRouter()

    @router.get("/slow", response_model=dict[str, int])
    @cached_response(namespace="slow", per_user=False)
    async def slow() -> dict[str, int]:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.2)
        return {"answer": 42}

    app = make_app(settings)
    app.include_router(router)
    async with running(app) as client:
        responses = await asyncio.gather(*(client.get("/slow") for _ in range(50)))

    assert [response.status_code for response in responses] == [200] * 50
    assert {response.content for response in responses} == {b'{"answer":42}'}
    assert runs == 1


async def test_the_callers_identity_is_cached_and_revocation_is_immediate(
    app: FastAPI, client: AsyncClient, alice: Headers
) -> None:
    user_lookups = 0

    def count_user_lookups(*args: object) -> None:
        nonlocal user_lookups
        statement = str(args[2])
        user_lookups += "FROM users" in statement and "token_hash" in statement

    engine = app.state.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count_user_lookups)
    try:
        await client.get("/api/items", headers=alice)
        await client.get("/api/items", headers=alice)
        assert user_lookups == 1

        assert (await client.delete("/api/me/token", headers=alice)).status_code == 204
        assert (await client.get("/api/me", headers=alice)).status_code == 401
    finally:
        event.remove(engine, "before_cursor_execute", count_user_lookups)


async def test_a_hit_never_carries_fields_the_response_model_filters(
    make_app: Callable[[Settings], FastAPI], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    class Public(BaseModel):
        name: str

    class WithSecret(Public):
        secret: str

    router = APIRouter()

    @router.get("/profile", response_model=Public)
    @cached_response(namespace="profiles", per_user=False)
    async def profile() -> WithSecret:
        return WithSecret(name="alice", secret="hunter2")

    app = make_app(settings)
    app.include_router(router)
    async with running(app) as client:
        responses = [await client.get("/profile") for _ in range(3)]

    assert [cache_status(response) for response in responses] == ["MISS", "HIT", "HIT"]
    assert {response.content for response in responses} == {b'{"name":"alice"}'}
    assert "response_model differs" in caplog.text


def test_a_cached_route_must_not_return_a_response_object() -> None:
    async def html_page() -> HTMLResponse:
        return HTMLResponse("<p>a HIT could not rebuild this</p>")

    with pytest.raises(TypeError, match="must return data"):
        cached_response(namespace="pages", per_user=False)(html_page)


async def test_a_failing_edge_lookup_costs_a_miss_never_an_error(
    client: AsyncClient,
    alice: Headers,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await create_item(client, alice)
    await client.get("/api/items", headers=alice)
    filled = await client.get("/api/items", headers=alice)
    assert cache_status(filled) == "HIT"

    async def broken_lookup(*args: object) -> None:
        raise RuntimeError("a bug in the edge's lookup")

    monkeypatch.setattr(EdgeCacheMiddleware, "stored_response", broken_lookup)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/api/items", headers=alice)

    # The route answers instead, from the same cache, with the same HTTP semantics.
    assert response.status_code == 200
    assert response.content == filled.content
    assert response.headers["etag"] == filled.headers["etag"]
    assert cache_status(response) == "HIT"
    [logged] = [record for record in caplog.records if record.exc_info is not None]
    assert "the edge lookup failed" in logged.getMessage()
