"""Test settings for the in-process cache: nothing to configure, nothing outlives the app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def check_cache_server() -> str | None:
    """The in-process cache has no server to be down."""
    return None


def cache_settings() -> dict[str, Any]:
    return {}


async def remove_cache_entries(prefix: str) -> None:
    """The in-process cache disappears with the app."""
    del prefix


@asynccontextmanager
async def prepared_cache_server() -> AsyncIterator[None]:
    """Nothing to prepare for a test run: the cache lives in the app."""
    yield
