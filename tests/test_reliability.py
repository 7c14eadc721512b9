"""The baked service as real processes: uvicorn with two workers against Redis and PostgreSQL
servers this module starts itself, so it can stop and restart them under load.

Every load is bounded in time and requests, on loopback only. The figures each test measured
are printed (run with -s to see them) and recorded in the test report.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from cookiecutter.main import cookiecutter

from tests.baking import BakedProject, clean_environment
from tests.scrapes import Sample, parse_samples, parse_scrapes
from tests.servers import PostgresServer, RedisServer, wait_for_port

# One worker runs the whole module: its tests share the service and the servers.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reliability")]

WORKERS = 2
PYTHON_VERSION = "3.12"
DATABASE_DEADLINE_SECONDS = 3
# The service's default, set explicitly: a test waits out a breaker an earlier one opened.
CACHE_BREAKER_SECONDS = 5


@dataclass
class Service:
    """The running service, the servers behind it, and what it needs to be called."""

    project: BakedProject
    package: str
    env: dict[str, str]
    redis: RedisServer
    postgres: PostgresServer
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    base: str = ""
    process: subprocess.Popen[bytes] | None = None

    def python(self, *args: str) -> str:
        return self.project.cli(self.package, self.env, *args)

    def start(self) -> None:
        self.process, port = self.project.serve(
            self.package,
            self.env,
            self.log,
            workers=WORKERS,
            options=["--timeout-graceful-shutdown", "20"],
        )
        self.base = f"http://127.0.0.1:{port}"
        wait_for_port(port, open_=True)
        deadline = time.monotonic() + 30
        while requests.get(f"{self.base}/health/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.1)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.process = None
        return code

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def connections(self) -> tuple[int, int]:
        """The service's connections to Redis and to PostgreSQL, as the servers count them."""
        redis = sum(name.startswith(self.package) for name in self.redis.client_names())
        activity = "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}'"
        return redis, int(self.postgres.sql(activity.format(self.package)))

    def secrets(self) -> list[str]:
        """Strings that must never appear in a response or a log line."""
        return [
            self.env["SECRET_KEY"],
            self.env["METRICS_TOKEN"],
            PostgresServer.PASSWORD,
            *self.tokens.values(),
        ]

    def warnings(self) -> list[str]:
        """The service log's warnings and errors: why a test saw what it did."""
        lines = self.log.read_text("utf-8", errors="replace").splitlines()
        levels = ('"level": "WARNING"', '"level": "ERROR"')
        return [line for line in lines if any(level in line for level in levels)]

    def unshowable(self) -> list[str]:
        """Strings that must never appear in a response: secrets, and tracebacks."""
        return [*self.secrets(), "Traceback"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    output = tmp_path_factory.mktemp("reliability")
    path = Path(
        cookiecutter(
            str(Path(__file__).resolve().parent.parent),
            no_input=True,
            output_dir=str(output),
            extra_context={
                "cache_backend": "redis",
                "database": "postgresql",
                "python_version": PYTHON_VERSION,
            },
        )
    )
    project = BakedProject(path, PYTHON_VERSION)
    project.install()
    package = next(path.glob("src/*/__init__.py")).parent.name
    redis, postgres = RedisServer(), PostgresServer()
    redis.start()
    postgres.start()
    postgres.sql(f'CREATE DATABASE "{package}"')
    env = clean_environment() | {
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "INFO",
        "SECRET_KEY": secrets.token_urlsafe(48),
        # Production without a token would answer GET /metrics 404.
        "METRICS_TOKEN": secrets.token_urlsafe(32),
        "DATABASE_URL": postgres.url(package),
        "REDIS_URL": redis.url,
        "CACHE_PREFIX": package,
        # Short enough that a test sees the pool give up on a stopped server.
        "DATABASE_POOL_TIMEOUT_SECONDS": "3",
        "DATABASE_STATEMENT_TIMEOUT_SECONDS": str(DATABASE_DEADLINE_SECONDS),
        # This machine runs other suites meanwhile: an event loop may come back to a cache
        # answer later than production's 0.5 s deadline, which would refuse writes (503).
        "CACHE_TIMEOUT_SECONDS": "3",
        "CACHE_BREAKER_SECONDS": str(CACHE_BREAKER_SECONDS),
    }
    service = Service(project, package, env, redis, postgres, output / "service.log")
    service.python("migrate")
    for user in ("alice", "bob"):
        service.tokens[user] = service.python("create-user", user).strip().splitlines()[-1]
    service.start()
    try:
        yield service
    finally:
        if service.process is not None:
            service.stop()
        redis.stop()
        postgres.stop()
        postgres.remove()


@dataclass
class Outcome:
    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class Load:
    """Threads that each call `step(session)` over and over until stopped."""

    def __init__(
        self, clients: int, step: Callable[[requests.Session, int], list[Outcome]]
    ) -> None:
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(step, number), daemon=True)
            for number in range(clients)
        ]

    def _run(self, step: Callable[[requests.Session, int], list[Outcome]], number: int) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                outcomes = step(session, number)
                with self._lock:
                    self.outcomes.extend(outcomes)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def call(session: requests.Session, method: str, url: str, **kwargs: Any) -> Outcome:
    try:
        response = session.request(method, url, timeout=30, **kwargs)
    except requests.RequestException as error:
        return Outcome(None, error=type(error).__name__)
    return Outcome(response.status_code, response.content, dict(response.headers))


def report(name: str, **figures: Any) -> None:
    print(f"\nreliability {name}: " + json.dumps(figures))


def statuses(outcomes: list[Outcome]) -> Counter[int | str | None]:
    return Counter(outcome.status or outcome.error for outcome in outcomes)


def test_cached_reads_keep_answering_through_a_redis_outage(service: Service) -> None:
    def read(session: requests.Session, number: int) -> list[Outcome]:
        user = ("alice", "bob")[number % 2]
        return [call(session, "GET", f"{service.base}/api/items", headers=service.auth(user))]

    with Load(4, read) as load:
        time.sleep(1.5)
        service.redis.stop()
        time.sleep(1.5)
        ready = requests.get(f"{service.base}/health/ready", timeout=10)
        time.sleep(0.5)
        service.redis.start()
        restarted = time.monotonic()
        time.sleep(1.5)

    # Caching resumes: HITs again (from Redis or a worker's copy) within 5 s of the restart.
    resumed_after = None
    while time.monotonic() - restarted < 5 and resumed_after is None:
        response = requests.get(
            f"{service.base}/api/items", headers=service.auth("alice"), timeout=5
        )
        if response.headers.get("x-fastapi-cache") == "HIT":
            resumed_after = time.monotonic() - restarted
        time.sleep(0.05)
    counts = statuses(load.outcomes)
    report(
        "redis outage",
        requests=len(load.outcomes),
        statuses=dict(counts),
        resumed_after_s=resumed_after,
    )
    assert set(counts) == {200}
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["cache"]
    assert resumed_after is not None


def test_a_postgres_outage_is_a_clear_503_and_the_service_recovers(service: Service) -> None:
    alice = service.auth("alice")
    service.postgres.stop()
    try:
        write = requests.post(
            f"{service.base}/api/items",
            json={"name": "alice-during-outage"},
            headers=alice,
            timeout=30,
        )
        ready = requests.get(f"{service.base}/health/ready", timeout=30)
    finally:
        service.postgres.start()
        restarted = time.monotonic()
    recovered_after = None
    while time.monotonic() - restarted < 15 and recovered_after is None:
        response = requests.post(
            f"{service.base}/api/items",
            json={"name": "alice-after-outage"},
            headers=alice,
            timeout=30,
        )
        if response.status_code == 201:
            recovered_after = time.monotonic() - restarted
        time.sleep(0.1)

    report("postgres outage", write_status=write.status_code, recovered_after_s=recovered_after)
    assert write.status_code == 503
    assert write.json() == {
        "detail": "The database is unreachable; try again shortly",
        "request_id": write.headers["X-Request-ID"],
    }
    assert ready.status_code == 503
    assert "database" in ready.json()["failing"]
    assert recovered_after is not None


def test_a_locked_table_answers_uncached_requests_within_the_database_deadline(
    service: Service,
) -> None:
    """A migration or a long transaction holds `items`: what needs the table gives up at the
    deadline with a 503 and writes nothing; what the cache holds keeps answering."""
    alice = service.auth("alice")
    items = f"{service.base}/api/items"
    # An earlier test may have left a worker's cache breaker open, and a write refused (503)
    # until it closes: retry as a client told Retry-After would.
    give_up = time.monotonic() + 15
    while (
        item := requests.post(items, json={"name": "alice-before-lock"}, headers=alice, timeout=30)
    ).status_code == 503:
        assert time.monotonic() < give_up, "writes were still refused 15 s on"
        time.sleep(0.5)
    one = f"{items}/{item.json()['id']}"
    assert requests.get(one, headers=alice, timeout=30).status_code == 200  # now cached
    # Every worker answers it from the cache. A worker whose breaker an earlier test opened
    # answers MISS until the breaker's period is over (jitter: +20 %) and a read has probed the
    # cache again; while one request probes, the others it serves are still MISSes. So: HITs
    # for longer than that period, then many connections at once (spread over the workers),
    # each reading until it gets a HIT, so that each worker's breaker has closed.
    longest_breaker_seconds = CACHE_BREAKER_SECONDS * 1.2 + 0.5
    hits_since, give_up = None, time.monotonic() + 4 * longest_breaker_seconds
    while hits_since is None or time.monotonic() - hits_since < longest_breaker_seconds:
        assert time.monotonic() < give_up, "the cached item never became a HIT"
        answer = requests.get(one, headers=alice | {"Connection": "close"}, timeout=30)
        if answer.headers.get("x-fastapi-cache") != "HIT":
            hits_since = None
        elif hits_since is None:
            hits_since = time.monotonic()
        time.sleep(0.05)

    def read_until_hit(_: int) -> bool:
        with requests.Session() as session:
            for _ in range(50):
                answer = session.get(one, headers=alice, timeout=30)
                if answer.headers.get("x-fastapi-cache") == "HIT":
                    return True
                time.sleep(0.05)
        return False

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(read_until_hit, range(16))), "a worker never answered a HIT"
    rows = "SELECT id, name, description, updated_at FROM items ORDER BY id"
    before = service.postgres.sql(rows, service.package)
    uncached: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", one, {"json": {"name": "alice-during-lock"}}),
        ("POST", items, {"json": {"name": "alice-during-lock"}}),
        ("DELETE", one, {}),
        ("GET", items, {"headers": {"Cache-Control": "no-store"}}),
    ] * 3  # 12 at once: fewer than one worker's pool, so none waits for a connection
    timed: list[tuple[str, Outcome, float]] = []

    def send(method: str, url: str, options: dict[str, Any]) -> None:
        headers = alice | options.pop("headers", {})
        started = time.monotonic()
        with requests.Session() as session:
            outcome = call(session, method, url, headers=headers, **options)
        timed.append((method, outcome, time.monotonic() - started))

    lock = "LOCK TABLE items IN ACCESS EXCLUSIVE MODE"
    holder = service.postgres.hold(lock, service.package, seconds=60)
    try:
        granted = (
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'items' AND l.mode = 'AccessExclusiveLock' AND l.granted"
        )
        deadline = time.monotonic() + 10
        while service.postgres.sql(granted, service.package) != "1":
            assert time.monotonic() < deadline, "the lock was never granted"
            time.sleep(0.05)
        threads = [
            threading.Thread(target=send, args=(method, url, dict(options)))
            for method, url, options in uncached
        ]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        cached = requests.get(one, headers=alice, timeout=30)
        cached_seconds = time.monotonic() - started
        for thread in threads:
            thread.join(timeout=60)
    finally:
        service.postgres.release(holder)
    after = service.postgres.sql(rows, service.package)

    report(
        "locked table",
        deadline_s=DATABASE_DEADLINE_SECONDS,
        uncached=[
            (method, outcome.status, round(seconds, 2)) for method, outcome, seconds in timed
        ],
        cached=(cached.status_code, round(cached_seconds, 2)),
    )
    assert len(timed) == len(uncached)
    for method, outcome, seconds in timed:
        assert outcome.status in {503, 504}, (method, outcome.status, outcome.error)
        assert seconds < DATABASE_DEADLINE_SECONDS + 2, (method, seconds)
        assert outcome.headers["retry-after"]
        body = json.loads(outcome.body)
        assert body == {"detail": body["detail"], "request_id": outcome.headers["x-request-id"]}
        for secret in service.unshowable():
            assert secret.encode() not in outcome.body
    assert cached.status_code == 200
    assert cached.headers["x-fastapi-cache"] == "HIT"
    assert cached_seconds < 1
    assert after == before  # nothing half-written


def test_a_soak_of_mixed_reads_and_writes(service: Service) -> None:
    """Four clients, two per user, each write followed at once by reads that must show it."""
    stale: list[str] = []
    leaks: list[str] = []

    def work(session: requests.Session, number: int) -> list[Outcome]:
        user = ("alice", "bob")[number % 2]
        other = ("bob", "alice")[number % 2]
        headers = service.auth(user)
        name = f"{user}-{number}-{secrets.token_hex(3)}"
        created = call(
            session, "POST", f"{service.base}/api/items", json={"name": name}, headers=headers
        )
        outcomes = [created]
        if created.status != 201:
            return outcomes
        item_id = json.loads(created.body)["id"]
        listed = call(session, "GET", f"{service.base}/api/items?limit=500", headers=headers)
        one = call(session, "GET", f"{service.base}/api/items/{item_id}", headers=headers)
        theirs = call(
            session, "GET", f"{service.base}/api/items/{item_id}", headers=service.auth(other)
        )
        removed = call(session, "DELETE", f"{service.base}/api/items/{item_id}", headers=headers)
        after = call(session, "GET", f"{service.base}/api/items?limit=500", headers=headers)
        me = call(session, "GET", f"{service.base}/api/me", headers=headers)
        outcomes += [listed, one, theirs, removed, after, me]
        if listed.status == 200 and item_id not in {i["id"] for i in json.loads(listed.body)}:
            stale.append(f"{user}: created {item_id} missing from the next list")
        if after.status == 200 and item_id in {i["id"] for i in json.loads(after.body)}:
            stale.append(f"{user}: deleted {item_id} still listed")
        for outcome in (listed, after):
            if outcome.status == 200:
                names = [i["name"] for i in json.loads(outcome.body)]
                leaks.extend(n for n in names if not n.startswith(f"{user}-"))
        if me.status == 200 and json.loads(me.body)["name"] != user:
            leaks.append(f"{user} got {json.loads(me.body)['name']}'s /api/me")
        if theirs.status != 404:
            leaks.append(f"{other} read {user}'s item: {theirs.status}")
        return outcomes

    with Load(4, work) as load:
        time.sleep(4)
        warm = service.connections(), worker_memory(service)
        time.sleep(12)
        hot = service.connections(), worker_memory(service)

    counts = statuses(load.outcomes)
    report(
        "soak",
        requests=len(load.outcomes),
        statuses={str(k): v for k, v in counts.items()},
        connections_redis_postgres={"after_4s": warm[0], "after_16s": hot[0]},
        worker_rss_mb={"after_4s": warm[1], "after_16s": hot[1]},
    )
    # 404 only where a user asked for the other's item (checked as `leaks` otherwise). A 503
    # is a write refused because its cache invalidation could not be confirmed in time (the
    # machine runs other suites meanwhile): allowed when rare and stated, never a stale read.
    refused = [o for o in load.outcomes if o.status == 503]
    assert set(counts) <= {200, 201, 204, 404, 503}
    assert all(b"nothing was changed" in o.body for o in refused)
    assert all("retry-after" in {name.lower() for name in o.headers} for o in refused)
    assert len(refused) * 20 <= len(load.outcomes), service.warnings()
    assert stale == []
    assert leaks == []
    # No growth: pools reuse connections, memory stays within a bound.
    assert hot[0][0] <= warm[0][0] + WORKERS
    assert hot[0][1] <= warm[0][1] + WORKERS
    assert hot[1] - warm[1] < 40
    for outcome in load.outcomes:
        for secret in service.unshowable():
            assert secret.encode() not in outcome.body


def worker_memory(service: Service) -> float:
    """Resident memory of the uvicorn processes, in MB."""
    assert service.process is not None
    pids = [service.process.pid] + [
        int(pid)
        for pid in subprocess.run(
            ["pgrep", "-P", str(service.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
    ]
    total_kb = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


UPLOAD_BYTES = 100 * 1024 * 1024
UPLOAD_CHUNK_BYTES = 1024 * 1024


def upload_body(*, chunked: bool) -> Iterator[bytes]:
    """A 100 MB JSON item, made one chunk at a time (and framed as chunks when `chunked`)."""
    filler = b"x" * UPLOAD_CHUNK_BYTES
    count = UPLOAD_BYTES // UPLOAD_CHUNK_BYTES
    for number in range(count):
        chunk = filler
        if number == 0:
            chunk = b'{"name": "' + filler[10:]
        elif number == count - 1:
            chunk = filler[:-2] + b'"}'
        yield b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
    if chunked:
        yield b"0\r\n\r\n"


def upload(service: Service, *, chunked: bool) -> int | str:
    """POST a 100 MB JSON body as a client that stops sending once the server has answered.

    A raw socket, because an HTTP library keeps sending the whole body into a server that has
    already answered 413 and stopped reading. Returns the response's status, or what went wrong.
    """
    host, port = service.base.removeprefix("http://").split(":")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {UPLOAD_BYTES}"
    head = (
        f"POST /api/items HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {service.auth('alice')['Authorization']}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\nConnection: close\r\n\r\n"
    )
    pending = memoryview(head.encode())
    remaining = upload_body(chunked=chunked)
    answer = b""
    failure = "no answer"
    deadline = time.monotonic() + 120
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.setblocking(False)
        while time.monotonic() < deadline:
            want_write = [connection] if pending else []
            readable, writable, _ = select.select([connection], want_write, [], 1)
            try:
                if readable:
                    data = connection.recv(65536)
                    if not data:
                        break
                    answer += data
                    pending, remaining = memoryview(b""), iter([])  # answered: stop sending
                elif writable:
                    sent = connection.send(pending)
                    pending = pending[sent:] or memoryview(next(remaining, b""))
            except ConnectionError as error:
                # A server that answers early closes without reading the rest; its answer may
                # still wait in the receive buffer, so a failed send only ends the sending.
                failure = type(error).__name__
                if readable:
                    break
                pending, remaining = memoryview(b""), iter([])
    if not answer.startswith(b"HTTP/1.1 "):
        return failure
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_uploads_leave_worker_memory_flat(service: Service, chunked: bool) -> None:
    """Three 100 MB bodies at once: refused with 413 before they are read into memory."""
    baseline = worker_memory(service)
    peak = baseline
    finished = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not finished.is_set():
            peak = max(peak, worker_memory(service))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    results: list[int | str] = []
    uploaders = [
        threading.Thread(target=lambda: results.append(upload(service, chunked=chunked)))
        for _ in range(3)
    ]
    started = time.monotonic()
    for uploader in uploaders:
        uploader.start()
    for uploader in uploaders:
        uploader.join(timeout=180)
    seconds = time.monotonic() - started
    time.sleep(0.2)
    finished.set()
    sampler.join()

    report(
        f"three 100 MB uploads ({'chunked' if chunked else 'Content-Length'})",
        statuses=results,
        seconds=round(seconds, 2),
        worker_rss_mb={"baseline": round(baseline, 1), "peak": round(peak, 1)},
    )
    assert results == [413] * 3
    assert peak - baseline < 30


@pytest.mark.parametrize(
    ("description", "path", "headers"),
    [
        ("8 KB query string", "/api/items?q=" + "x" * 8000, {}),
        ("500 query parameters", "/api/items?" + "&".join(f"p{n}={n}" for n in range(500)), {}),
        ("non-numeric limit", "/api/items?limit=abc", {}),
        ("negative offset", "/api/items?offset=-1", {}),
        ("percent-encoded NUL in the path", "/api/items/%00", {}),
        ("unicode path", "/api/items/éè", {}),
        ("integer overflow id", "/api/items/99999999999999999999999", {}),
        ("64 KB header", "/api/items", {"X-Padding": "y" * 65536}),
        ("request id with a newline", "/api/items", {"X-Request-ID": "a\\nb"}),
        ("malformed bearer", "/api/items", {"Authorization": "Bearer"}),
    ],
)
def test_odd_requests_get_a_4xx_or_an_answer_never_a_5xx(
    service: Service, description: str, path: str, headers: dict[str, str]
) -> None:
    response = requests.get(
        f"{service.base}{path}", headers={**service.auth("alice"), **headers}, timeout=30
    )

    assert response.status_code < 500, (description, response.status_code, response.text[:200])
    for secret in service.unshowable():
        assert secret not in response.text


def test_cache_keys_stay_bounded_whatever_the_query(service: Service) -> None:
    for length in (10, 1000, 6000):
        requests.get(
            f"{service.base}/api/items?q={'z' * length}", headers=service.auth("bob"), timeout=30
        )
    output = subprocess.run(
        # Every key starts with its partition's hash tag: {<prefix>:user:<id>}.
        [
            "redis-cli",
            "-p",
            str(service.redis.port),
            "--scan",
            "--pattern",
            f"{{{service.package}:*",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()

    assert output
    assert max(len(key) for key in output) < 200


def test_schemathesis_finds_no_server_error_or_schema_violation(service: Service) -> None:
    schemathesis = str(Path(sys.executable).with_name("schemathesis"))
    result = subprocess.run(
        [
            schemathesis,
            "run",
            f"{service.base}/openapi.json",
            "--header",
            f"Authorization: Bearer {service.tokens['bob']}",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "50",
            # Revoking the token would end the run's authentication halfway.
            "--exclude-path",
            "/api/me/token",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report("schemathesis", exit_code=result.returncode, summary=result.stdout[-600:])
    assert result.returncode == 0, result.stdout[-6000:]


def scrape_text(service: Service) -> str:
    headers = {"Authorization": f"Bearer {service.env['METRICS_TOKEN']}"}
    response = requests.get(f"{service.base}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def lookups(samples: list[Sample], since: Counter[str] | None = None) -> Counter[str]:
    """cache_lookups_total by result (namespaces and tiers summed), grown `since` a baseline."""
    counts: Counter[str] = Counter()
    for name, labels, value in samples:
        if name == "cache_lookups_total":
            counts[labels["result"]] += int(value)
    counts.subtract(since or Counter())
    return +counts


def live_workers(samples: list[Sample]) -> set[int]:
    """The pids whose gauges a scrape shows: a dead worker's are dropped."""
    return {int(labels["pid"]) for name, labels, _ in samples if name == "worker_open_fds"}


def test_every_scrape_agrees_with_what_clients_saw_across_a_worker_restart(
    service: Service,
) -> None:
    """Counts match X-FastAPI-Cache after every read (fresh connections, so either worker
    answers either call); a killed worker's counts stay once uvicorn replaces it; a restarted
    server starts at zero (the baked README's Metrics section)."""

    def scrape() -> list[Sample]:
        return parse_samples(service.project.path, scrape_text(service))

    alice = service.auth("alice")
    created = requests.post(
        f"{service.base}/api/items", json={"name": "counted"}, headers=alice, timeout=30
    )
    url = f"{service.base}/api/items/{created.json()['id']}"
    baseline = lookups(scrape())
    seen: Counter[str] = Counter()
    # What the client had seen at each scrape, and the scrape; parsed together afterwards.
    scrapes: list[tuple[Counter[str], str]] = []

    def read(times: int) -> None:
        for _ in range(times):
            response = requests.get(url, headers=alice, timeout=30)
            assert response.status_code == 200, response.text
            seen[response.headers["x-fastapi-cache"].lower()] += 1
            scrapes.append((Counter(seen), scrape_text(service)))

    read(20)
    workers = live_workers(scrape())
    assert len(workers) == WORKERS
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while len(replaced := live_workers(scrape())) < WORKERS or victim in replaced:
        assert time.monotonic() < deadline, "uvicorn never replaced the killed worker"
        time.sleep(0.2)
    seen_before_kill, after_kill = Counter(seen), lookups(scrape(), since=baseline)
    read(20)

    service.stop()
    service.start()
    after_restart = lookups(scrape())
    parsed = parse_scrapes(service.project.path, [text for _, text in scrapes])
    disagreements = [
        (dict(expected), dict(counted))
        for (expected, _), samples in zip(scrapes, parsed, strict=True)
        if (counted := lookups(samples, since=baseline)) != expected
    ]
    report(
        "metrics",
        seen=dict(seen),
        scrapes=len(scrapes),
        disagreements=len(disagreements),
        workers=sorted(workers),
        replaced_by=sorted(replaced - workers),
    )
    assert disagreements == []
    assert after_kill == seen_before_kill  # the killed worker's counts stayed
    assert seen["hit"] > 0
    assert after_restart == Counter()


def test_sigterm_finishes_in_flight_requests_and_leaves_no_connection(service: Service) -> None:
    """Streams in flight when SIGTERM arrives complete; then every connection is closed."""
    alice = service.auth("alice")
    for number in range(300):
        requests.post(
            f"{service.base}/api/items",
            json={"name": f"alice-bulk-{number}"},
            headers=alice,
            timeout=30,
        )
    expected = len(
        requests.get(
            f"{service.base}/api/items/export", headers=alice, timeout=30
        ).text.splitlines()
    )
    results: list[int | str] = []
    started = threading.Barrier(9)

    def export() -> None:
        try:
            with requests.get(
                f"{service.base}/api/items/export", headers=alice, timeout=60, stream=True
            ) as response:
                started.wait()
                lines = 0
                for chunk in response.iter_lines():
                    if chunk:
                        lines += 1
                        time.sleep(0.001)  # a slow reader keeps the response in flight
                results.append(lines)
        except requests.RequestException as error:
            results.append(type(error).__name__)

    threads = [threading.Thread(target=export) for _ in range(8)]
    for thread in threads:
        thread.start()
    started.wait()
    exit_code = service.stop()
    for thread in threads:
        thread.join(timeout=60)
    connections_left = service.connections()

    service.start()  # for any test that runs after this one
    report("sigterm", exports=results, expected_lines=expected, exit_code=exit_code)
    assert results == [expected] * 8
    assert exit_code == 0
    assert connections_left == (0, 0)
    log = service.log.read_text(encoding="utf-8", errors="replace")
    for secret in service.secrets():
        assert secret not in log, "a secret reached the log"
    # Every test above this one drove the service without an unhandled error.
    assert "unhandled error" not in log
