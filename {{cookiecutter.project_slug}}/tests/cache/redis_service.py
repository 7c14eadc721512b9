"""Test settings for the Redis cache: a real server from REDIS_URL, keys under a unique prefix."""

import os
from typing import Any

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
