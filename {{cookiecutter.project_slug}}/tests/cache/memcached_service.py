"""Test settings for the memcached cache: a real server from MEMCACHED_URL."""

import os
from typing import Any

MEMCACHED_URL = os.environ.get("MEMCACHED_URL", "memcached://127.0.0.1:11211")


def cache_settings() -> dict[str, Any]:
    return {"memcached_url": MEMCACHED_URL}


async def remove_cache_entries(prefix: str) -> None:
    """Memcached cannot delete by prefix; test keys carry a unique prefix and expire by TTL."""
    del prefix
