"""The in-process cache's claim on a SQLite file: a lock file beside it, held while serving.

Every process that opens the same database file opens the same lock file, whichever container
it runs in, so at most one of them holds the lock (cache/memory.py says why). An exclusive
flock belongs to the open file: the kernel drops it when the process ends, however it ends, and
a second open of the file within one process does not share it.
"""

import fcntl
import os
import socket
from collections.abc import Callable

import anyio

from {{ cookiecutter.project_slug }}.db.sqlite import database_file
from {{ cookiecutter.project_slug }}.settings import Settings

# Beside the database, named like SQLite's own -wal and -shm files; kept after release, since
# deleting a lock file that another process may have just opened would split the lock in two.
LOCK_FILE_SUFFIX = "-cache-lock"


class DatabaseLock:
    """Held by at most one process for each database file; an in-memory database needs none."""

    def __init__(self, settings: Settings, on_lost: Callable[[], None]) -> None:
        del on_lost  # a flock is never taken away from the process that holds it
        path = database_file(settings)
        self.path = None if path is None else f"{path}{LOCK_FILE_SUFFIX}"
        self.descriptor: int | None = None

    @property
    def name(self) -> str:
        return f"the lock file {self.path}"

    async def take(self) -> str | None:
        """Take the lock: None when taken, else who holds it. OSError if the file cannot open."""
        if self.path is None:
            return None  # an in-memory database lives and dies with this process
        return await anyio.to_thread.run_sync(self.take_now, self.path)

    def take_now(self, path: str) -> str | None:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 256, 0).decode(errors="replace").strip()
            os.close(descriptor)
            return holder or "another process"
        # Who holds it, for the message another process shows when it is refused.
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self.descriptor = descriptor
        return None

    async def check(self) -> None:
        """Nothing to check: the lock lasts as long as its open file."""

    async def release(self) -> None:
        if self.descriptor is not None:
            os.close(self.descriptor)  # closing the last descriptor releases the flock
            self.descriptor = None

    async def close(self) -> None:
        await self.release()
