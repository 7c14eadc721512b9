"""Test settings for the Redis cache: a real server from REDIS_URL, keys under a unique prefix."""

import os
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def cache_settings() -> dict[str, Any]:
    return {"redis_url": REDIS_URL}


async def remove_cache_entries(prefix: str) -> None:
    """Delete every key the test wrote (SCAN, never KEYS: other tenants share the server)."""
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def server_address() -> tuple[str, int]:
    url = urlsplit(REDIS_URL)
    return url.hostname or "127.0.0.1", url.port or 6379


def settings_for_server(host: str, port: int) -> dict[str, Any]:
    return {"redis_url": f"redis://{host}:{port}{urlsplit(REDIS_URL).path}"}
