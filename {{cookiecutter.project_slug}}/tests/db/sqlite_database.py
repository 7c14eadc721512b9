"""Test databases on SQLite: a file in a temporary directory, removed afterwards."""

import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url


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


@asynccontextmanager
async def items_locked(url: str) -> AsyncIterator[None]:
    """Hold the database's write lock from a connection of our own: writes wait, reads do not."""
    # isolation_level=None: sqlite3 leaves transactions to the statements below.
    connection = sqlite3.connect(str(make_url(url).database), isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()
