"""CORS for browser clients, with the response cache in the path: every origin gets its own."""

from collections.abc import Callable, Sequence

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import AsyncClient, Response
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

from tests.conftest import TEST_SECRET_KEY, SettingsFactory, running

pytestmark = pytest.mark.anyio

Headers = dict[str, str]

ALLOWED = "https://app.example.com"
OTHER_ALLOWED = "http://localhost:5173"
REFUSED = "https://elsewhere.example.net"
EXPOSED = {"x-fastapi-cache", "x-request-id", "etag"}


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    """This module's app (the `app` and `client` fixtures) allows two origins."""
    return make_settings(cors_origins=[ALLOWED, OTHER_ALLOWED])


@pytest.fixture
def cache_reads(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[Sequence[str]]:
    """The keys of every read the app makes from its cache (the reads still reach the server)."""
    cache: ResponseCache = app.state.cache
    reads: list[Sequence[str]] = []
    read = cache.read

    async def recorded_read(keys: Sequence[str]) -> list[bytes | None]:
        reads.append(keys)
        return await read(keys)

    monkeypatch.setattr(cache, "read", recorded_read)
    return reads


def allowed_origin(response: Response) -> str | None:
    origin: str | None = response.headers.get("access-control-allow-origin")
    return origin


def cache_status(response: Response) -> str | None:
    status: str | None = response.headers.get("x-fastapi-cache")
    return status


def tokens(response: Response, header: str) -> set[str]:
    """The comma-separated values of every `header` line, in lower case."""
    return {
        token.strip().lower()
        for line in response.headers.get_list(header)
        for token in line.split(",")
        if token.strip()
    }


def preflight(origin: str, method: str, headers: str | None = None) -> Headers:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    return asked


async def create_item(client: AsyncClient, headers: Headers, name: str = "lamp") -> int:
    response = await client.post("/api/items", json={"name": name}, headers=headers)
    assert response.status_code == 201
    item_id: int = response.json()["id"]
    return item_id


@pytest.mark.parametrize(
    ("method", "path", "asked_headers"),
    [
        ("GET", "/api/items", "authorization, if-none-match"),
        ("GET", "/api/items/1", "authorization, x-request-id, cache-control"),
        ("POST", "/api/items", "authorization, content-type"),
        ("PUT", "/api/items/1", "authorization, content-type"),
        ("DELETE", "/api/items/1", "authorization"),
    ],
)
async def test_a_preflight_is_answered_before_authentication_and_the_cache(
    client: AsyncClient,
    cache_reads: list[Sequence[str]],
    alice: Headers,
    method: str,
    path: str,
    asked_headers: str,
) -> None:
    # Once the edge knows the route, a GET reads the cache even before authentication.
    for _ in range(2):
        await client.get(path, headers=alice)
    assert cache_reads
    cache_reads.clear()

    response = await client.options(path, headers=preflight(ALLOWED, method, asked_headers))

    assert response.status_code == 200  # no token, yet no 401; the router would answer 405
    assert allowed_origin(response) == ALLOWED
    assert method.lower() in tokens(response, "access-control-allow-methods")
    assert {h.strip() for h in asked_headers.split(",")} <= tokens(
        response, "access-control-allow-headers"
    )
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in tokens(response, "vary")
    assert response.headers["x-request-id"]
    assert cache_status(response) is None
    assert cache_reads == []


async def test_a_preflight_is_never_stored_as_a_response(
    client: AsyncClient, alice: Headers
) -> None:
    await client.options("/api/items", headers=preflight(ALLOWED, "GET", "authorization"))

    first = await client.get("/api/items", headers=alice | {"Origin": ALLOWED})

    assert (first.status_code, cache_status(first)) == (200, "MISS")
    assert first.json() == []


@pytest.mark.parametrize(
    ("origin", "method", "asked_headers", "refused"),
    [
        (REFUSED, "GET", "authorization", "origin"),
        (f"{ALLOWED}:8443", "GET", "authorization", "origin"),
        (ALLOWED, "PATCH", "authorization", "method"),
        (ALLOWED, "GET", "authorization, x-api-key", "headers"),
    ],
)
async def test_a_preflight_outside_the_policy_is_refused(
    client: AsyncClient, origin: str, method: str, asked_headers: str, refused: str
) -> None:
    response = await client.options("/api/items", headers=preflight(origin, method, asked_headers))

    assert response.status_code == 400
    assert response.text == f"Disallowed CORS {refused}"
    if refused == "origin":
        assert allowed_origin(response) is None


async def test_each_request_gets_the_cors_headers_of_its_own_origin_hit_or_miss(
    client: AsyncClient, alice: Headers
) -> None:
    item_id = await create_item(client, alice)
    url = f"/api/items/{item_id}"

    filled = await client.get(url, headers=alice | {"Origin": ALLOWED})
    other = await client.get(url, headers=alice | {"Origin": OTHER_ALLOWED})
    refused = await client.get(url, headers=alice | {"Origin": REFUSED})
    same_origin = await client.get(url, headers=alice)

    assert [cache_status(r) for r in (filled, other, refused, same_origin)] == [
        "MISS",
        "HIT",
        "HIT",
        "HIT",
    ]
    assert allowed_origin(filled) == ALLOWED
    assert allowed_origin(other) == OTHER_ALLOWED
    # The server still answers; without the header the browser keeps the body from the page.
    assert allowed_origin(refused) is None
    assert allowed_origin(same_origin) is None
    for response in (filled, other, refused, same_origin):
        assert response.status_code == 200
        assert response.content == filled.content
        assert response.headers["etag"] == filled.headers["etag"]
        # Whatever a downstream cache keeps, it keeps apart per token and per origin.
        assert {"authorization", "origin"} <= tokens(response, "vary")
        assert "access-control-allow-credentials" not in response.headers


async def test_a_public_cached_response_varies_by_origin_too(client: AsyncClient) -> None:
    filled = await client.get("/api/stats", headers={"Origin": ALLOWED})
    other = await client.get("/api/stats", headers={"Origin": OTHER_ALLOWED})
    no_origin = await client.get("/api/stats")

    assert [cache_status(r) for r in (filled, other, no_origin)] == ["MISS", "HIT", "HIT"]
    assert [allowed_origin(r) for r in (filled, other, no_origin)] == [ALLOWED, OTHER_ALLOWED, None]
    assert all(tokens(r, "vary") == {"origin"} for r in (filled, other, no_origin))


@pytest.mark.parametrize("origin", [ALLOWED, OTHER_ALLOWED])
async def test_pages_on_allowed_origins_can_read_the_cache_status_request_id_and_etag(
    client: AsyncClient, alice: Headers, origin: str
) -> None:
    miss = await client.get("/api/me", headers=alice | {"Origin": origin})
    hit = await client.get("/api/me", headers=alice | {"Origin": origin})

    for response in (miss, hit):
        assert tokens(response, "access-control-expose-headers") >= EXPOSED
        assert set(response.headers) >= EXPOSED


async def test_a_cross_origin_conditional_request_gets_its_304(
    client: AsyncClient, alice: Headers
) -> None:
    item_id = await create_item(client, alice)
    url = f"/api/items/{item_id}"
    etag = (await client.get(url, headers=alice | {"Origin": ALLOWED})).headers["etag"]
    conditional = alice | {"Origin": OTHER_ALLOWED, "If-None-Match": etag}

    from_hit = await client.get(url, headers=conditional)
    await create_item(client, alice, "another")  # a write: the next read is computed again
    from_miss = await client.get(url, headers=conditional)

    for response, answered_by in ((from_hit, "HIT"), (from_miss, "MISS")):
        assert (response.status_code, response.content) == (304, b"")
        assert cache_status(response) == answered_by
        assert response.headers["etag"] == etag
        assert allowed_origin(response) == OTHER_ALLOWED
        assert tokens(response, "access-control-expose-headers") >= EXPOSED


async def test_errors_carry_cors_headers_so_the_page_can_read_them(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    settings = make_settings(cors_origins=[ALLOWED], max_request_body_bytes=64)
    async with running(make_app(settings)) as client:
        unauthenticated = await client.get("/api/items", headers={"Origin": ALLOWED})
        too_large = await client.post(
            "/api/items", content=b"{" + b" " * 100 + b"}", headers={"Origin": ALLOWED}
        )

    assert (unauthenticated.status_code, too_large.status_code) == (401, 413)
    for response in (unauthenticated, too_large):
        assert allowed_origin(response) == ALLOWED
        assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_without_cors_origins_no_response_carries_cors_headers(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI], alice: Headers
) -> None:
    async with running(make_app(make_settings())) as client:
        await client.get("/api/me", headers=alice)
        hit = await client.get("/api/me", headers=alice | {"Origin": ALLOWED})
        asked = await client.options("/api/me", headers=preflight(ALLOWED, "GET", "authorization"))

    assert cache_status(hit) == "HIT"
    assert asked.status_code == 405  # no CORS layer: the router answers, as for any OPTIONS
    for response in (hit, asked):
        assert not any(name.startswith("access-control-") for name in response.headers)
        assert "origin" not in tokens(response, "vary")


async def test_any_origin_gets_a_star_and_no_credentials(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI], alice: Headers
) -> None:
    async with running(make_app(make_settings(cors_origins=["*"]))) as client:
        miss = await client.get("/api/me", headers=alice | {"Origin": ALLOWED})
        hit = await client.get("/api/me", headers=alice | {"Origin": REFUSED})
        asked = await client.options("/api/me", headers=preflight(REFUSED, "GET", "authorization"))

    assert [cache_status(miss), cache_status(hit)] == ["MISS", "HIT"]
    for response in (miss, hit, asked):
        assert response.status_code == 200
        assert allowed_origin(response) == "*"
        assert "access-control-allow-credentials" not in response.headers


async def test_credentials_when_enabled_name_the_origin(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI], alice: Headers
) -> None:
    settings = make_settings(cors_origins=[ALLOWED], cors_allow_credentials=True)
    async with running(make_app(settings)) as client:
        response = await client.get("/api/me", headers=alice | {"Origin": ALLOWED})
        refused = await client.get("/api/me", headers=alice | {"Origin": REFUSED})

    assert allowed_origin(response) == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert allowed_origin(refused) is None


async def test_start_up_refuses_any_origin_with_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("CORS_ORIGINS", "*")
    monkeypatch.setenv("CORS_ALLOW_CREDENTIALS", "true")
    get_settings.cache_clear()
    try:
        with pytest.raises(ValidationError, match="list the allowed origins instead"):
            async with LifespanManager(create_app()):
                pass
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("variable", "origins"),
    [
        ("", []),
        ('["https://app.example.com", "http://localhost:5173"]', [ALLOWED, OTHER_ALLOWED]),
        ("https://app.example.com, http://localhost:5173", [ALLOWED, OTHER_ALLOWED]),
        ("HTTPS://App.Example.com,", [ALLOWED]),
        ("*", ["*"]),
    ],
)
def test_cors_origins_read_as_json_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch, variable: str, origins: list[str]
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", variable)

    assert Settings(_env_file=None, secret_key=TEST_SECRET_KEY).cors_origins == origins


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/",
        "https://app.example.com/path",
        "app.example.com",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com?x=1",
    ],
)
def test_a_value_that_is_not_an_origin_is_refused_with_the_right_form(origin: str) -> None:
    with pytest.raises(ValidationError, match=r"write scheme://host\[:port\] with no path"):
        Settings(_env_file=None, secret_key=TEST_SECRET_KEY, cors_origins=[origin])


def test_a_malformed_json_list_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", '["https://app.example.com"')

    with pytest.raises(ValidationError, match="CORS_ORIGINS is not a valid JSON list"):
        Settings(_env_file=None, secret_key=TEST_SECRET_KEY)
