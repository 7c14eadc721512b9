"""The applications the benchmark compares, served by uvicorn from a baked project's virtualenv.

- `limit_app`: the items endpoint with the same payload and response model, but no caching and
  no work at all: the most a route can do on this machine.
- `naive_app`: fastapi-cache2 wired as its quick start shows (its own RedisBackend or
  InMemoryBackend, the default key builder, `@cache` with a return annotation only).
- `template_app`: the baked project's own application, plus one cached bench route whose runs
  are counted, for the stampede test.

The payload, the package name and the backend come from the environment (BENCH_*).
"""

import asyncio
import importlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi_cache import FastAPICache
from fastapi_cache.backends.inmemory import InMemoryBackend
from fastapi_cache.decorator import cache

PACKAGE = os.environ["BENCH_PACKAGE"]
# The stampede route's body takes this long, so concurrent cold requests really overlap.
SLOW_BODY_SECONDS = 0.05

schemas = importlib.import_module(f"{PACKAGE}.schemas")
ItemRead = schemas.ItemRead


def payload() -> list[Any]:
    items = json.loads(Path(os.environ["BENCH_PAYLOAD"]).read_text(encoding="utf-8"))
    return [ItemRead.model_validate(item) for item in items]


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


def limit_app() -> FastAPI:
    app = FastAPI()
    items = payload()

    @app.get("/api/items", response_model=list[ItemRead])
    async def list_items() -> list[Any]:
        return items

    return app


def naive_app() -> FastAPI:
    items = payload()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if os.environ["BENCH_BACKEND"] == "redis":
            # Imported here: the memory-backend project does not install redis.
            from fastapi_cache.backends.redis import RedisBackend
            from redis import asyncio as aioredis

            redis = aioredis.from_url(os.environ["REDIS_URL"])
            FastAPICache.init(RedisBackend(redis), prefix=os.environ["CACHE_PREFIX"])
            yield
            await redis.aclose()
        else:
            FastAPICache.init(InMemoryBackend(), prefix=os.environ["CACHE_PREFIX"])
            yield

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
