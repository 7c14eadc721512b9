"""Redis and PostgreSQL servers of a test's own, on free loopback ports, to stop and restart.

PostgreSQL refuses to run as root, so when the tests run as root its cluster belongs to the
`postgres` system user and its commands run as that user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, open_: bool, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if open_:
                    return
        except OSError:
            if not open_:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not {'open' if open_ else 'close'} in {seconds} s")


class RedisServer:
    """redis-server in the foreground, nothing persisted: a restart starts empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, open_=True)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=START_SECONDS)
            self._process = None
        wait_for_port(self.port, open_=False)

    def client_names(self) -> list[str]:
        output = subprocess.run(
            ["redis-cli", "-p", str(self.port), "client", "list"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return [
            field.removeprefix("name=")
            for line in output.splitlines()
            for field in line.split()
            if field.startswith("name=")
        ]


class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, fsync off) in a temporary directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="test-pg-"))
        self.data = self.directory / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    # Trust authentication ignores it, so tests can check it never leaks into logs or responses.
    PASSWORD = "pg-password-that-must-not-leak"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def _command(self, *command: str) -> list[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        return [*prefix, *command]

    def _psql(self, database: str, statement: str) -> list[str]:
        return [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-At",
            "-c",
            statement,
        ]

    def _run(self, *command: str) -> str:
        result = subprocess.run(
            self._command(*command), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self._run(*self._psql(database, statement)).strip()

    def hold(self, statement: str, database: str, seconds: float) -> subprocess.Popen[bytes]:
        """Run `statement` (a LOCK, say) in a transaction that stays open `seconds` in the
        background; its session is named `holder`, for `release`."""
        transaction = f"BEGIN; {statement}; SELECT pg_sleep({seconds}); ROLLBACK"
        return subprocess.Popen(
            self._command(*self._psql(database, transaction)),
            env={**os.environ, "PGAPPNAME": "holder"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def release(self, holder: subprocess.Popen[bytes]) -> None:
        """End `hold`'s transaction now: its locks go with its session."""
        holders = "SELECT pid FROM pg_stat_activity WHERE application_name = 'holder'"
        self.sql(f"SELECT pg_terminate_backend(pid) FROM ({holders}) AS holders")
        holder.wait(timeout=START_SECONDS)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
