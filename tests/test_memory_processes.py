"""The in-process cache and several processes on one database, as real uvicorn servers (issue 13).

A write can invalidate only the memory cache of the process that made it, so a bake with
cache_backend=memory admits one process per database: `uvicorn --workers 2`, or a second server
on the same SQLite file or PostgreSQL database, must refuse at start-up and name the fix, and no
read after a write's 2xx may be stale meanwhile. Every request goes on a fresh connection, so
with two workers it may reach either. Each test prints what it measured (-rA, or -s).
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from cookiecutter.main import cookiecutter

from tests.baking import BakedProject, clean_environment
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("memory-processes")]

PYTHON_VERSION = "3.12"
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
REFUSAL = "cache_backend=memory serves one process per database"
FIX = "generate the project with cache_backend=redis or memcached"
# Bounds for a shared 2-core machine, where a worker may take seconds to import the app.
START_SECONDS = 60
REQUEST_TIMEOUT = 30


@dataclass
class Deployment:
    """A memory bake, its database, and a user's token."""

    project: BakedProject
    package: str
    env: dict[str, str]
    logs: Path
    token: str = ""

    def cli(self, *args: str) -> str:
        python = str(self.project.path / ".venv" / "bin" / "python")
        result = subprocess.run(
            [python, "-m", self.package, *args],
            cwd=self.project.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def serve(self, name: str, *, workers: int = 1) -> Server:
        port = free_port()
        uvicorn = str(self.project.path / ".venv" / "bin" / "uvicorn")
        command = [uvicorn, "--factory", f"{self.package}.main:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers)]
        log = self.logs / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                command, cwd=self.project.path, env=self.env, stdout=output, stderr=output
            )
        return Server(process, f"http://127.0.0.1:{port}", log)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    log: Path

    def ready(self) -> bool:
        try:
            response = requests.get(f"{self.base}/health/ready", timeout=REQUEST_TIMEOUT)
        except requests.ConnectionError:
            return False
        return response.status_code == 200

    def wait_until_ready_or_exited(self) -> bool:
        """True once it answers ready; False if it exited first."""
        deadline = time.monotonic() + START_SECONDS
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"neither ready nor exited: {self.log}"
            if self.ready():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=START_SECONDS)

    def logged(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Staleness:
    reads: int = 0
    stale: int = 0
    hits: int = 0
    unanswered: int = 0  # the connection failed: a server that stopped, never a stale answer
    details: list[str] = field(default_factory=list)


def fetch(method: str, url: str, token: str, **kwargs: Any) -> requests.Response | None:
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    try:
        return requests.request(method, url, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs)
    except requests.ConnectionError:
        return None


def write_then_read(bases: list[str], token: str, rounds: int, seen: Staleness) -> None:
    """Create, cache, change and delete items through `bases` in turn; after each write's 2xx,
    read on fresh connections through every base and count answers that predate it."""
    for number in range(rounds):
        writer, other = bases[number % len(bases)], bases[(number + 1) % len(bases)]
        created = fetch("POST", f"{writer}/api/items", token, json={"name": "first"})
        if created is None or created.status_code != 201:
            seen.unanswered += 1
            continue
        item = f"/api/items/{created.json()['id']}"
        for base in bases * 3:  # cached where a server may cache it
            fetch("GET", f"{base}{item}", token)
        name = f"changed {number}"
        changed = fetch("PUT", f"{other}{item}", token, json={"name": name})
        if changed is not None and changed.status_code == 200:
            for base in bases * 3:
                read(seen, fetch("GET", f"{base}{item}", token), expected=name)
        deleted = fetch("DELETE", f"{writer}{item}", token)
        if deleted is not None and deleted.status_code == 204:
            for base in bases * 3:
                read(seen, fetch("GET", f"{base}{item}", token), expected=None)


def read(seen: Staleness, response: requests.Response | None, expected: str | None) -> None:
    if response is None:
        seen.unanswered += 1
        return
    seen.reads += 1
    seen.hits += response.headers.get("x-fastapi-cache") == "HIT"
    if expected is None:
        fresh = response.status_code == 404
    else:
        fresh = response.status_code == 200 and response.json()["name"] == expected
    if not fresh:
        seen.stale += 1
        seen.details.append(f"expected {expected!r}, got {response.status_code} {response.text}")


def report(title: str, **figures: Any) -> None:
    print(f"\n{title}: " + ", ".join(f"{name}={value}" for name, value in figures.items()))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    database: str = request.param
    output = tmp_path_factory.mktemp(f"memory-{database}")
    path = Path(
        cookiecutter(
            str(Path(__file__).resolve().parent.parent),
            no_input=True,
            output_dir=str(output),
            extra_context={
                "cache_backend": "memory",
                "database": database,
                "python_version": PYTHON_VERSION,
            },
        )
    )
    project = BakedProject(path, PYTHON_VERSION)
    project.install()
    package = next(path.glob("src/*/__init__.py")).parent.name
    name = f"memory_processes_{uuid.uuid4().hex[:12]}"
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{output / 'service.db'}"
    else:
        url = f"{POSTGRES}/{name}"  # `migrate` creates it
    env = clean_environment() | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": url,
    }
    deployment = Deployment(project, package, env, output)
    deployment.cli("migrate")
    deployment.token = deployment.cli("create-user", "alice").strip().splitlines()[-1]
    try:
        yield deployment
    finally:
        if database == "postgresql":
            drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", drop],
                capture_output=True,
                check=False,
                timeout=60,
            )


def test_two_workers_stop_at_start_up_and_never_serve_a_stale_read(
    deployment: Deployment,
) -> None:
    server = deployment.serve("two-workers", workers=2)
    seen = Staleness()
    started = time.monotonic()
    try:
        # Whatever answers before the refusal stops the server must be fresh.
        while server.process.poll() is None and time.monotonic() - started < START_SECONDS:
            write_then_read([server.base], deployment.token, 1, seen)
            time.sleep(0.05)
    finally:
        server.stop()
    stopped_after = time.monotonic() - started
    logged = server.logged()

    report(
        "two workers",
        reads=seen.reads,
        stale=seen.stale,
        unanswered=seen.unanswered,
        stopped_after_s=round(stopped_after, 1),
        exit_code=server.process.returncode,
    )
    assert stopped_after < START_SECONDS, "the server kept running with two workers"
    assert seen.stale == 0, seen.details[:5]
    assert REFUSAL in logged
    assert FIX in logged
    # uvicorn stops the whole server when a worker fails its start-up.
    assert "failed to start, stopping the parent process" in logged


def test_a_second_server_on_the_same_database_refuses_and_the_first_stays_fresh(
    deployment: Deployment,
) -> None:
    first = deployment.serve("first")
    second = None
    try:
        assert first.wait_until_ready_or_exited(), first.logged()
        second = deployment.serve("second")
        second_became_ready = second.wait_until_ready_or_exited()
        seen = Staleness()
        bases = [first.base, second.base] if second_became_ready else [first.base]
        write_then_read(bases, deployment.token, 10, seen)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert second is not None
    # With the first one gone, the database is free for another.
    third = deployment.serve("third")
    try:
        third_became_ready = third.wait_until_ready_or_exited()
    finally:
        third.stop()

    report(
        "two servers",
        reads=seen.reads,
        stale=seen.stale,
        hits=seen.hits,
        second_exit_code=second.process.returncode,
    )
    assert not second_became_ready
    assert second.process.returncode == 3  # uvicorn's exit code for a failed start-up
    assert REFUSAL in second.logged()
    assert FIX in second.logged()
    assert seen.stale == 0, seen.details[:5]
    assert seen.reads == 10 * 6
    assert seen.hits > 0  # the first server does use its cache
    assert third_became_ready, third.logged()
