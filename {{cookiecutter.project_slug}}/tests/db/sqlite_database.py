"""Test databases on SQLite: a file in a temporary directory, removed afterwards."""

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


def check_database_server() -> str | None:
    """SQLite is a file: there is no server to be down."""
    return None


@asynccontextmanager
async def isolated_database_url() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="test-db-") as directory:
        yield f"sqlite+aiosqlite:///{Path(directory) / 'test.db'}"


def unreachable_database_url() -> str:
    """A database file in a directory that does not exist, so every connection attempt fails."""
    missing_directory = Path(tempfile.gettempdir()) / "missing-directory-for-tests"
    return f"sqlite+aiosqlite:///{missing_directory / 'test.db'}"
