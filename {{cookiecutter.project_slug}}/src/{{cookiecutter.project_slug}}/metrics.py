"""Prometheus metrics, counted in every worker and read together from any of them.

`uvicorn --workers N` runs N processes; a scrape reaches one. So the metrics are kept in
prometheus-client's multiprocess mode: each process writes its values to files in one directory
per server run (metrics_directory.py: a restarted server starts from zero), and GET /metrics
(api/metrics.py) adds up every process's files.

- A worker that dies and is restarted leaves its counters in place (totals never go back), and
  its gauges are dropped at the next scrape (they describe a process that is gone).
- prometheus-client's process metrics describe only the process that answers a scrape, so they
  are not exported; each worker reports its own memory, CPU time and open files here instead,
  labelled by pid.

`cache_lookups_total` counts what clients saw in `X-FastAPI-Cache`: result `hit` is a HIT (with
the tier that answered it: `local` or `shared`); `miss` and `error` are MISSes, `error` when the
cache server failed or was skipped during the lookup; `bypass` is a GET to a cached route that
asked for `Cache-Control: no-store` (no header). Labels never carry a path, a token or a user:
routes are templates, namespaces are the code's names.
"""

import asyncio
from bisect import bisect_left
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from prometheus_client import Counter, Gauge, Histogram, ProcessCollector, values
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

if values.ValueClass is values.MutexValue:
    # prometheus-client chose single-process mode: it was imported before this package.
    raise RuntimeError(
        "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: import "
        f"{__name__.partition('.')[0]} first"
    )

UNMATCHED_ROUTE = "<unmatched>"

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from a request's arrival to its last response byte, by route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE_LOOKUPS = Counter(
    "cache_lookups",
    "Cached GETs by what the client saw: hit (with its tier), miss, error (a MISS because the "
    "cache failed) or bypass (no-store).",
    ["namespace", "result", "tier"],
)
CACHE_INVALIDATIONS = Counter(
    "cache_invalidations",
    "Writes that invalidated a cached namespace (counted after their commit).",
    ["namespace"],
)
CACHE_SERVER_ERRORS = Counter(
    "cache_server_errors",
    "Cache server calls that failed (reason: the exception's type, TimeoutError past the "
    "deadline) or were skipped because the circuit breaker was open (breaker_open).",
    ["operation", "reason"],
)
CACHE_REFUSED_STORES = Counter(
    "cache_refused_stores",
    "Cache stores the server answered but refused (Redis out of memory under noeviction): "
    "while this grows, responses are computed every time.",
    ["operation"],
)
DATABASE_CONNECTIONS = Gauge(
    "db_pool_connections",
    "Database connections of the workers' pools: in_use (checked out) or idle (pooled).",
    ["state"],
    multiprocess_mode="livesum",
)
PROCESS_RESIDENT_MEMORY = Gauge(
    "worker_resident_memory_bytes",
    "Each worker's resident memory.",
    multiprocess_mode="liveall",
)
PROCESS_CPU_SECONDS = Gauge(
    "worker_cpu_seconds",
    "Each worker's CPU time (user + system) since it started.",
    multiprocess_mode="liveall",
)
PROCESS_OPEN_FDS = Gauge(
    "worker_open_fds",
    "Each worker's open file descriptors.",
    multiprocess_mode="liveall",
)


class Lookup:
    """What the cache code learned about the current request's lookup."""

    __slots__ = ("bypassed", "failed", "tier")

    def __init__(self) -> None:
        self.tier = "shared"
        self.failed = False
        self.bypassed = False  # the request asked for no-store


# Set per request by the cache's edge (cache/edge.py); the cache code marks it on the way.
current_lookup: ContextVar[Lookup | None] = ContextVar("current_lookup", default=None)


def note_local_hit() -> None:
    """The edge answers this request from the worker's local tier."""
    if (lookup := current_lookup.get()) is not None:
        lookup.tier = "local"


def count_cache_error(operation: str, reason: str) -> None:
    """A cache call failed, timed out (`reason`) or was skipped by the breaker."""
    CACHE_SERVER_ERRORS.labels(operation, reason).inc()
    if operation == "read" and (lookup := current_lookup.get()) is not None:
        lookup.failed = True


def count_refused_store(operation: str) -> None:
    """The cache server refused to store (it is full); it still answers reads."""
    CACHE_REFUSED_STORES.labels(operation).inc()


async def count_invalidation(namespace: str) -> None:
    """An after-commit callback (db/session.py): a write invalidated `namespace`."""
    CACHE_INVALIDATIONS.labels(namespace).inc()


# Each labelled child is looked up once per label set: `labels()` costs more than the count.
request_counters: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
lookup_counters: dict[tuple[str, str, str], Counter] = {}


def request_children(key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
    if (children := request_counters.get(key)) is None:
        method, route, status = key
        children = (
            HTTP_REQUESTS.labels(method, route, str(status)),
            HTTP_REQUEST_DURATION.labels(method, route),
        )
        request_counters[key] = children
    return children


def lookup_counter(key: tuple[str, str, str]) -> Counter:
    if (counter := lookup_counters.get(key)) is None:
        counter = lookup_counters[key] = CACHE_LOOKUPS.labels(*key)
    return counter


class Batch:
    """Request and lookup counts waiting to be written, for the rest of one event-loop turn.

    Each multiprocess write takes a lock, a pid check and an mmap write, and a request makes
    four: more than a HIT from the local tier costs on its own. So the first request counted in
    a turn of the event loop is written at once, before its bytes go out: a scrape made once a
    client has its answer counts it, whichever worker the scrape reaches. Requests counted
    later in the same turn, which only a busy worker has, wait for the turn's end and are
    written together, one write per label set and histogram bucket.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # whose turn the batch is open for
        self.requests: dict[tuple[str, str, int], list[float]] = {}
        self.lookups: dict[tuple[str, str, str], int] = {}

    def is_open(self) -> bool:
        if self.loop is None:
            return False
        try:
            if asyncio.get_running_loop() is self.loop:
                return True
        except RuntimeError:
            pass
        self.write()  # its loop stopped before the turn ended (tests run one loop each)
        return False

    def open(self) -> None:
        """Make the counts of the rest of this turn wait for its end (if a loop is running)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_soon(self.write)
        self.loop = loop

    def write(self) -> None:
        self.loop = None
        for key, durations in self.requests.items():
            counter, histogram = request_children(key)
            counter.inc(len(durations))
            observe_all(histogram, durations)
        for lookup_key, count in self.lookups.items():
            lookup_counter(lookup_key).inc(count)
        self.requests.clear()
        self.lookups.clear()


batch = Batch()


def observe_all(histogram: Histogram, durations: list[float]) -> None:
    """`histogram.observe` for each duration, with one write per bucket they fall in.

    prometheus-client has no batch observe: this adds to the sum and the buckets that observe
    itself adds to (`_sum`, `_buckets`: prometheus-client 0.26, pinned in pyproject.toml;
    tests/test_metrics.py compares the two).
    """
    buckets = histogram._upper_bounds
    counts = [0] * len(buckets)
    for seconds in durations:
        counts[bisect_left(buckets, seconds)] += 1
    histogram._sum.inc(sum(durations))
    for bucket, count in zip(histogram._buckets, counts, strict=True):
        if count:
            bucket.inc(count)


def count_request(
    method: str,
    route: str,
    status: int,
    seconds: float,
    lookup: tuple[str, str, str] | None = None,
) -> None:
    """Count a request and, for a cached GET, its lookup: `(namespace, result, tier)`."""
    key = (method, route, status)
    if batch.is_open():
        batch.requests.setdefault(key, []).append(seconds)
        if lookup is not None:
            batch.lookups[lookup] = batch.lookups.get(lookup, 0) + 1
        return
    counter, histogram = request_children(key)
    counter.inc()
    histogram.observe(seconds)
    if lookup is not None:
        lookup_counter(lookup).inc()
    batch.open()


def watch_pool(engine: AsyncEngine) -> None:
    """Keep db_pool_connections up to date from the pool's events (this worker's share)."""
    in_use, idle = DATABASE_CONNECTIONS.labels("in_use"), DATABASE_CONNECTIONS.labels("idle")
    in_use.set(0)
    idle.set(0)
    # A connection is opened, then checked out; checked in, then maybe closed. A connection
    # closed while checked out (invalidated) is checked in afterwards: the counts still add up.
    moves = {
        "connect": ((idle, 1),),
        "checkout": ((idle, -1), (in_use, 1)),
        "checkin": ((in_use, -1), (idle, 1)),
        "close": ((idle, -1),),
        "detach": ((in_use, -1),),
    }
    for name, changes in moves.items():

        def move(*_: object, changes: tuple[tuple[Gauge, int], ...] = changes) -> None:
            for gauge, amount in changes:
                gauge.inc(amount)

        event.listen(engine.sync_engine.pool, name, move)


@asynccontextmanager
async def reporting_worker(interval_seconds: float = 10.0) -> AsyncIterator[None]:
    """Report this worker's memory, CPU time and open files every `interval_seconds`."""
    gauges = {
        "process_resident_memory_bytes": PROCESS_RESIDENT_MEMORY,
        "process_cpu_seconds": PROCESS_CPU_SECONDS,
        "process_open_fds": PROCESS_OPEN_FDS,
    }
    collector = ProcessCollector(registry=None)

    async def report() -> None:
        while True:
            for family in collector.collect():
                if (gauge := gauges.get(family.name)) is not None and family.samples:
                    gauge.set(family.samples[0].value)
            await asyncio.sleep(interval_seconds)

    task = asyncio.create_task(report())
    try:
        yield
    finally:
        task.cancel()
