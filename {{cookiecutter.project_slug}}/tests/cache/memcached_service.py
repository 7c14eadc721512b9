"""Test settings for the memcached cache: a real server from MEMCACHED_URL."""

import os
from typing import Any
from urllib.parse import urlsplit

MEMCACHED_URL = os.environ.get("MEMCACHED_URL", "memcached://127.0.0.1:11211")


def cache_settings() -> dict[str, Any]:
    return {"memcached_url": MEMCACHED_URL}


async def remove_cache_entries(prefix: str) -> None:
    """Memcached cannot delete by prefix; test keys carry a unique prefix and expire by TTL."""
    del prefix


def server_address() -> tuple[str, int]:
    url = urlsplit(MEMCACHED_URL)
    return url.hostname or "127.0.0.1", url.port or 11211


def settings_for_server(host: str, port: int) -> dict[str, Any]:
    return {"memcached_url": f"memcached://{host}:{port}"}
