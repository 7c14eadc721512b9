"""Test settings for the Redis cache: a real server from REDIS_URL, keys under a unique prefix."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.servers import CONNECT_TIMEOUT_SECONDS, Server, server_down, server_refused

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# REDIS_CLUSTER=true: REDIS_URL names a node of a Redis Cluster, as the service reads it.
CLUSTER = os.environ.get("REDIS_CLUSTER", "").lower() in ("1", "true", "yes", "on")
REDIS = Server("Redis", "REDIS_URL", compose_service="redis", debian_package="redis-server")
REDIS_SERVER = shutil.which("redis-server") or "redis-server"


def check_cache_server(url: str = REDIS_URL) -> str | None:
    """None when Redis answers at `url`; otherwise what to do about it."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        return server_down(REDIS, url, error)
    except redis.RedisError as error:  # it answered: a password or ACL problem
        return server_refused(REDIS, url, error)
    finally:
        client.close()
    return None


def cache_settings() -> dict[str, Any]:
    return {"redis_url": REDIS_URL, "redis_cluster": CLUSTER}


def observer_client() -> Redis | RedisCluster:
    """A client of the tests' own: on a cluster, one that reaches every node."""
    return RedisCluster.from_url(REDIS_URL) if CLUSTER else Redis.from_url(REDIS_URL)


async def remove_cache_entries(prefix: str) -> None:
    """Delete every key the test wrote (SCAN, never KEYS: other tenants share the server).

    Keys live in hash tags (`{prefix:...}`); on a cluster SCAN visits every master and DELETE
    is split by slot.
    """
    client = observer_client()
    try:
        keys = []
        for pattern in (f"{prefix}*", "{" + f"{prefix}*"):
            keys += [key async for key in client.scan_iter(match=pattern, count=500)]
        for key in keys:
            await client.delete(key)
    finally:
        await client.aclose()


def server_address() -> tuple[str, int]:
    url = urlsplit(REDIS_URL)
    return url.hostname or "127.0.0.1", url.port or 6379


def settings_for_server(host: str, port: int) -> dict[str, Any]:
    return {"redis_url": f"redis://{host}:{port}{urlsplit(REDIS_URL).path}"}


@asynccontextmanager
async def prepared_cache_server() -> AsyncIterator[None]:
    """Nothing to prepare for a test run: each test's keys carry a prefix of its own."""
    yield


@asynccontextmanager
async def private_server(port: int, *options: str) -> AsyncIterator[str]:
    """A redis-server of the test's own on `port` (no persistence), answering; yields its URL."""
    server = await asyncio.create_subprocess_exec(
        REDIS_SERVER,
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        *options,
        stdout=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = Redis.from_url(url)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    await client.ping()
                    break
                except RedisConnectionError:
                    await asyncio.sleep(0.05)
        yield url
    finally:
        await client.aclose()
        server.terminate()
        await server.wait()
