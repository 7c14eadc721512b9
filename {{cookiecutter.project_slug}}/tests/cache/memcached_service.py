"""Test settings for the memcached cache: a real server from MEMCACHED_URL."""

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from tests.servers import CONNECT_TIMEOUT_SECONDS, Server, server_down

MEMCACHED_URL = os.environ.get("MEMCACHED_URL", "memcached://127.0.0.1:11211")
MEMCACHED = Server(
    "memcached", "MEMCACHED_URL", compose_service="memcached", debian_package="memcached"
)


def check_cache_server(url: str = MEMCACHED_URL) -> str | None:
    """None when memcached answers `version` at `url`; otherwise what to do about it."""
    address = urlsplit(url)
    try:
        with socket.create_connection(
            (address.hostname or "127.0.0.1", address.port or 11211),
            timeout=CONNECT_TIMEOUT_SECONDS,
        ) as connection:
            connection.sendall(b"version\r\n")
            reply = connection.recv(64)
    except OSError as error:
        return server_down(MEMCACHED, url, error)
    if not reply.startswith(b"VERSION"):
        return server_down(MEMCACHED, url, ValueError(f"unexpected reply {reply[:20]!r}"))
    return None


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


@asynccontextmanager
async def prepared_cache_server() -> AsyncIterator[None]:
    """Nothing to prepare for a test run: each test's keys carry a prefix of its own."""
    yield
