"""The applications the benchmark compares, served by uvicorn from a baked project's virtualenv.

Limits, with no framework at all (raw ASGI):
- `raw_app` (L): sends the payload bytes.
- `raw_redis_app` (Lr): one redis-py GET of the payload, then sends it.
- `raw_memcached_app` (Lm): one aiomcache get of the payload, then sends it.
- `raw_dynamodb_app` (Ld): one aiobotocore GetItem (consistent read) of the payload, then sends
  it.

Frameworks:
- `bare_app` (a): the items endpoint with the same payload and response model, no caching.
- `quick_start_app` (b, bm): fastapi-cache2 wired as its quick start shows, on its own
  RedisBackend or MemcachedBackend, with the default key builder and coder.
- `template_app` (c, s, s-off, m, d, MISS, bypass): the baked project's own application, plus
  one cached route whose runs are counted, for the stampede test.

There is no fastapi-cache2 quick start on DynamoDB: its [dynamodb] extra pins aiobotocore < 3,
which the DynamoDB bake's aiobotocore 3 rules out.

The payload, the package name, the cache prefix and the servers come from the environment
(BENCH_*, CACHE_PREFIX, REDIS_URL, MEMCACHED_URL, DYNAMODB_*, AWS_*). Cache clients are imported
where they are used: each baked project installs only its own backend's client.
"""

import asyncio
import importlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache as cache_result
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi_cache import FastAPICache
from fastapi_cache.decorator import cache

PACKAGE = os.environ["BENCH_PACKAGE"]
LIMIT_KEY = f"{os.environ['CACHE_PREFIX']}:limit"
# The template's default pool size; the memcached targets all use it, so none waits for a
# connection more than the others.
MEMCACHED_POOL_SIZE = 10
# The stampede route's body takes this long, so concurrent cold requests really overlap.
SLOW_BODY_SECONDS = 0.05

schemas = importlib.import_module(f"{PACKAGE}.schemas")
ItemRead = schemas.ItemRead

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@cache_result
def payload() -> bytes:
    """The body every target sends: the template's answer, written once the items exist."""
    return Path(os.environ["BENCH_PAYLOAD"]).read_bytes()


def payload_items() -> list[Any]:
    return [ItemRead.model_validate(item) for item in json.loads(payload())]


def memcached_address() -> tuple[str, int]:
    url = urlsplit(os.environ.get("MEMCACHED_URL", "memcached://127.0.0.1:11211"))
    return url.hostname or "127.0.0.1", url.port or 11211


# Raw ASGI


def raw_asgi(body_for: Callable[[], Awaitable[bytes]]) -> Callable[..., Awaitable[None]]:
    """An ASGI app answering every HTTP request with 200 and the bytes `body_for` returns."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await body_for()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def raw_app() -> Callable[..., Awaitable[None]]:
    sent = payload()

    async def body() -> bytes:
        return sent

    return raw_asgi(body)


def raw_redis_app() -> Callable[..., Awaitable[None]]:
    from redis.asyncio import Redis

    client = Redis.from_url(os.environ["REDIS_URL"])
    stored = False

    async def body() -> bytes:
        nonlocal stored
        if not stored:
            await client.set(LIMIT_KEY, payload(), ex=3600)
            stored = True
        value: bytes = await client.get(LIMIT_KEY)
        return value

    return raw_asgi(body)


def raw_memcached_app() -> Callable[..., Awaitable[None]]:
    from aiomcache import Client

    client = Client(*memcached_address(), pool_size=MEMCACHED_POOL_SIZE)
    stored = False

    async def body() -> bytes:
        nonlocal stored
        if not stored:
            await client.set(LIMIT_KEY.encode(), payload(), exptime=3600)
            stored = True
        value: bytes = await client.get(LIMIT_KEY.encode())
        return value

    return raw_asgi(body)


def raw_dynamodb_app() -> Callable[..., Awaitable[None]]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    table = os.environ["DYNAMODB_TABLE"]
    key = {"key": {"S": LIMIT_KEY}}
    clients = AsyncExitStack()
    client: Any = None

    async def body() -> bytes:
        nonlocal client
        if client is None:  # the first request (check() warms each target up alone)
            client = await clients.enter_async_context(
                get_session().create_client(
                    "dynamodb",
                    endpoint_url=os.environ["DYNAMODB_ENDPOINT_URL"],
                    region_name=os.environ["AWS_REGION"],
                    # The template's default pool size, as for memcached.
                    config=AioConfig(max_pool_connections=MEMCACHED_POOL_SIZE),
                )
            )
            await client.put_item(TableName=table, Item=key | {"value": {"B": payload()}})
        answer = await client.get_item(TableName=table, Key=key, ConsistentRead=True)
        value: bytes = answer["Item"]["value"]["B"]
        return value

    return raw_asgi(body)


# FastAPI


class RunCounter:
    """Counts how often the stampede route's body ran, and serves the count."""

    def __init__(self, app: FastAPI) -> None:
        self.runs = 0

        @app.get("/bench/runs")
        async def runs() -> int:
            return self.runs

    async def slow_body(self, round: int) -> dict[str, int]:
        self.runs += 1
        await asyncio.sleep(SLOW_BODY_SECONDS)
        return {"round": round}


def bare_app() -> FastAPI:
    app = FastAPI()
    items = payload_items()

    @app.get("/api/items", response_model=list[ItemRead])
    async def list_items() -> list[Any]:
        return items

    return app


def quick_start_app() -> FastAPI:
    items = payload_items()
    prefix = os.environ["CACHE_PREFIX"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if os.environ["BENCH_BACKEND"] == "redis":
            from fastapi_cache.backends.redis import RedisBackend
            from redis import asyncio as aioredis

            redis = aioredis.from_url(os.environ["REDIS_URL"])
            FastAPICache.init(RedisBackend(redis), prefix=prefix)
            yield
            await redis.aclose()
        else:
            from aiomcache import Client
            from fastapi_cache.backends.memcached import MemcachedBackend

            client = Client(*memcached_address(), pool_size=MEMCACHED_POOL_SIZE)
            FastAPICache.init(MemcachedBackend(client), prefix=prefix)
            yield
            await client.close()

    app = FastAPI(lifespan=lifespan)
    counter = RunCounter(app)

    # The quick start's wiring; an hour's TTL, as for the template, so no entry expires mid-load.
    @app.get("/api/items")
    @cache(expire=3600)
    async def list_items() -> list[ItemRead]:  # type: ignore[valid-type]
        return items

    @app.get("/bench/slow")
    @cache(expire=60)
    async def slow(round: int) -> dict[str, int]:
        return await counter.slow_body(round)

    return app


def template_app() -> FastAPI:
    main = importlib.import_module(f"{PACKAGE}.main")
    decorator = importlib.import_module(f"{PACKAGE}.cache.decorator")
    app: FastAPI = main.create_app()
    counter = RunCounter(app)

    @app.get("/bench/slow", response_model=dict[str, int])
    @decorator.cached_response(namespace="bench", per_user=False)
    async def slow(round: int) -> dict[str, int]:
        return await counter.slow_body(round)

    return app
