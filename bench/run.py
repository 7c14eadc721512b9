"""`make bench`: every tier of a cached read, side by side in one run, against its limits.

Bakes the default (Redis) project, a memcached and a DynamoDB one, serves each target below
under uvicorn with one worker pinned to CPU 0, and loads it with wrk pinned to CPU 1
(`-t1 -c16`), where the cache servers (Redis, memcached, DynamoDB Local) are pinned for the
run. Every target serves the same 20-item payload: the body of the template's authenticated
GET /api/items.

    L   raw ASGI app sending the bytes            a   bare FastAPI endpoint, no cache
    Lr  raw ASGI + one redis-py GET               b   fastapi-cache2 quick start, Redis, HIT
    Lm  raw ASGI + one aiomcache get              bm  fastapi-cache2 quick start, memcached, HIT
    Ld  raw ASGI + one aiobotocore GetItem (DynamoDB Local, consistent read)
    c   template HIT from the local tier (Redis bake, LOCAL_CACHE_MAX_BYTES=64 MiB)
    s   template HIT from Redis (LOCAL_CACHE_MAX_BYTES=0)
    s-off   the same with METRICS_ENABLED=false: what counting every request costs
    c-traced, s-traced  c and s with tracing on (every request sampled, spans exported to a
            local OTLP/HTTP receiver): what tracing costs when it is turned on
    m   template HIT from memcached
    d   template HIT from DynamoDB Local (one BatchGetItem)
    miss    template, every request a cold key (`?n=<unique>`): the route runs and stores
    bypass  the same requests with `Cache-Control: no-store`: the route runs, no cache

Rounds are interleaved (each round loads every target once, the two of each goal back to back):
each target's medians are reported, and each goal is the median of its ratio in every round.
Then a stampede (50 concurrent cold requests for one key)
and the suites' times. Prints tables; JSON goes to .bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE_ROOT))

from bench.load import (  # noqa: E402
    WRK_CPU,
    Load,
    Server,
    drive,
    request,
    servers_pinned,
    serving,
)
from tests.baking import UV, clean_environment, find_python  # noqa: E402

BENCH_DIR = TEMPLATE_ROOT / "bench"
RESULTS_DIR = TEMPLATE_ROOT / ".bench"
COLD_KEYS_SCRIPT = BENCH_DIR / "cold_keys.lua"
PYTHON_VERSION = "3.12"
ITEMS = 20
CONNECTIONS = 16
STAMPEDE_REQUESTS = 50
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MEMCACHED = ("127.0.0.1", 11211)
DYNAMODB_ENDPOINT_URL = os.environ.get("DYNAMODB_ENDPOINT_URL", "http://127.0.0.1:8100")
CACHE_STATUS = "x-fastapi-cache"


# The receiver's address is filled in when it listens (OtlpReceiver).
TRACING = {"OTEL_EXPORTER_OTLP_ENDPOINT": "{otlp}", "OTEL_TRACES_SAMPLER": "always_on"}


@dataclass(frozen=True)
class Target:
    label: str
    bake: str  # "redis", "memcached" or "dynamodb": whose environment serves it
    factory: str  # in bench/targets.py
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cold_keys: bool = False  # a unique query string on every request (COLD_KEYS_SCRIPT)
    cache_status: str | None = None  # the x-fastapi-cache header a warm request must carry


# Loaded in this order in every round: the two targets of each goal back to back, so a burst
# of load from elsewhere on the machine is likely to slow both or neither.
TARGETS = {
    "L": Target("raw ASGI, payload bytes", "redis", "raw_app"),
    "c": Target(
        "template HIT, local tier (Redis bake, LOCAL_CACHE_MAX_BYTES=64 MiB)",
        "redis",
        "template_app",
        env={"LOCAL_CACHE_MAX_BYTES": str(64 * 1024 * 1024)},
        cache_status="HIT",
    ),
    "a": Target("bare FastAPI endpoint, no cache", "redis", "bare_app"),
    "Lr": Target("raw ASGI + one redis-py GET", "redis", "raw_redis_app"),
    "s": Target(
        "template HIT from Redis, LOCAL_CACHE_MAX_BYTES=0 (the default)",
        "redis",
        "template_app",
        env={"LOCAL_CACHE_MAX_BYTES": "0"},
        cache_status="HIT",
    ),
    "s-off": Target(
        "template HIT from Redis, METRICS_ENABLED=false",
        "redis",
        "template_app",
        env={"LOCAL_CACHE_MAX_BYTES": "0", "METRICS_ENABLED": "false"},
        cache_status="HIT",
    ),
    "b": Target(
        "fastapi-cache2 quick start, Redis, HIT",
        "redis",
        "quick_start_app",
        cache_status="HIT",
    ),
    "Lm": Target("raw ASGI + one aiomcache get", "memcached", "raw_memcached_app"),
    "m": Target("template HIT from memcached", "memcached", "template_app", cache_status="HIT"),
    "bm": Target(
        "fastapi-cache2 quick start, memcached, HIT",
        "memcached",
        "quick_start_app",
        cache_status="HIT",
    ),
    "Ld": Target("raw ASGI + one aiobotocore GetItem", "dynamodb", "raw_dynamodb_app"),
    "d": Target("template HIT from DynamoDB", "dynamodb", "template_app", cache_status="HIT"),
    # Tracing on: every request sampled, spans batched to a local OTLP/HTTP receiver.
    "c-traced": Target(
        "template HIT, local tier, tracing on (always_on, OTLP export)",
        "redis",
        "template_app",
        env={"LOCAL_CACHE_MAX_BYTES": str(64 * 1024 * 1024), **TRACING},
        cache_status="HIT",
    ),
    "s-traced": Target(
        "template HIT from Redis, tracing on (always_on, OTLP export)",
        "redis",
        "template_app",
        env={"LOCAL_CACHE_MAX_BYTES": "0", **TRACING},
        cache_status="HIT",
    ),
    "miss": Target(
        "template MISS, cold key each request (Redis bake)",
        "redis",
        "template_app",
        cold_keys=True,
        cache_status="MISS",
    ),
    "bypass": Target(
        "template, same requests, Cache-Control: no-store",
        "redis",
        "template_app",
        headers={"Cache-Control": "no-store"},
        cold_keys=True,
    ),
}


@dataclass(frozen=True)
class Goal:
    name: str
    value: Callable[[dict[str, dict[str, float]]], float]
    at_least: float | None = None
    at_most: float | None = None

    def met(self, value: float) -> bool:
        low = self.at_least is None or value >= self.at_least
        return low and (self.at_most is None or value <= self.at_most)

    @property
    def bound(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"<= {self.at_most:g}"


def rate(name: str, other: str) -> Goal:
    def value(medians: dict[str, dict[str, float]]) -> float:
        return medians[name]["requests_per_second"] / medians[other]["requests_per_second"]

    return Goal(f"{name}/{other} req/s", value)


def p99(name: str, other: str) -> Goal:
    def value(medians: dict[str, dict[str, float]]) -> float:
        return medians[name]["p99_ms"] / medians[other]["p99_ms"]

    return Goal(f"p99({name})/p99({other})", value)


def at_least(goal: Goal, bound: float) -> Goal:
    return Goal(goal.name, goal.value, at_least=bound)


def at_most(goal: Goal, bound: float) -> Goal:
    return Goal(goal.name, goal.value, at_most=bound)


GOALS = [
    at_least(rate("s", "Lr"), 0.5),
    at_least(rate("m", "Lm"), 0.5),
    at_least(rate("d", "Ld"), 0.5),
    at_least(rate("c", "L"), 0.5),
    at_least(rate("s", "b"), 3),
    at_least(rate("m", "bm"), 3),
    at_most(p99("s", "a"), 2),
    at_most(p99("m", "a"), 2),
    at_least(rate("c", "a"), 0.9),
    # Metrics on (the default) keep HIT throughput within 10% of metrics off.
    at_least(rate("s", "s-off"), 0.9),
]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def ensure_wrk() -> str:
    if wrk := shutil.which("wrk"):
        return wrk
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk from Debian's packages")
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(command, capture_output=True, check=False, timeout=600)
    if wrk := shutil.which("wrk"):
        return wrk
    raise SystemExit(
        "bench: wrk is not installed and could not be installed here; install it "
        "(Debian/Ubuntu: `sudo apt-get install wrk`, macOS: `brew install wrk`) and run again"
    )


@dataclass
class Project:
    path: Path
    package: str
    python: Path
    bake_seconds: float
    install_seconds: float


def bake_and_install(backend: str, output_dir: Path) -> Project:
    from cookiecutter.main import cookiecutter

    started = time.perf_counter()
    path = Path(
        cookiecutter(
            str(TEMPLATE_ROOT),
            no_input=True,
            output_dir=str(output_dir / backend),
            extra_context={"cache_backend": backend, "python_version": PYTHON_VERSION},
        )
    )
    baked = time.perf_counter()
    env = clean_environment() | {"UV_COMPILE_BYTECODE": "1"}
    run([UV, "sync", "--quiet", "--python", find_python(PYTHON_VERSION)], path, env)
    installed = time.perf_counter()
    package = next(path.glob("src/*/__init__.py")).parent.name
    python = path / ".venv" / "bin" / "python"
    return Project(path, package, python, baked - started, installed - baked)


def migrate(project: Project, env: dict[str, str]) -> None:
    run([str(project.python), "-m", project.package, "migrate"], project.path, env)


def create_user(project: Project, env: dict[str, str]) -> str:
    """Migrate the database and create a user; return its token (`<user id>.<secret>`)."""
    cli = [str(project.python), "-m", project.package]
    migrate(project, env)
    output = run([*cli, "create-user", f"bench-{secrets.token_hex(4)}"], project.path, env)
    return output.strip().splitlines()[-1]


def seed_items(server: Server, auth: dict[str, str]) -> bytes:
    """Create ITEMS items; return the body of GET /api/items."""
    for number in range(ITEMS):
        item = {"name": f"item {number}", "description": f"the benchmark's item {number}"}
        request(f"{server.base}/api/items", "POST", item, auth)
    return request(f"{server.base}/api/items", headers=auth)[2]


def check(name: str, target: Target, server: Server, auth: dict[str, str], body: bytes) -> None:
    """Warm the target up and make sure it answers what it is meant to measure."""
    path = f"/api/items?n=check-{secrets.token_hex(4)}" if target.cold_keys else "/api/items"
    headers = auth | target.headers
    if not target.cold_keys:
        request(f"{server.base}{path}", headers=headers)  # fills the cache
    status, received, answered = request(f"{server.base}{path}", headers=headers)
    if status != 200 or json.loads(answered) != json.loads(body):
        raise SystemExit(f"bench: {name} answered {status} with a different payload")
    if received.get(CACHE_STATUS) != target.cache_status:
        found = received.get(CACHE_STATUS)
        raise SystemExit(
            f"bench: {name} answered {CACHE_STATUS}: {found}, not {target.cache_status}"
        )


def load(name: str, server: Server, auth: dict[str, str], seconds: int, round_tag: str) -> Load:
    target = TARGETS[name]
    script = (COLD_KEYS_SCRIPT, f"{round_tag}-{name}") if target.cold_keys else None
    return drive(server, "/api/items", seconds, CONNECTIONS, auth | target.headers, script)


def stampede(server: Server) -> int:
    """How many times the body ran for STAMPEDE_REQUESTS concurrent cold requests of one key."""
    before = json.loads(request(f"{server.base}/bench/runs")[2])
    url = f"{server.base}/bench/slow?round={secrets.randbelow(10**9)}"
    start = threading.Barrier(STAMPEDE_REQUESTS)

    def call(_: int) -> int:
        start.wait()
        status: int = request(url)[0]
        return status

    with ThreadPoolExecutor(STAMPEDE_REQUESTS) as pool:
        statuses = list(pool.map(call, range(STAMPEDE_REQUESTS)))
    if statuses != [200] * STAMPEDE_REQUESTS:
        raise SystemExit(f"bench: stampede answers were not all 200: {sorted(set(statuses))}")
    runs: int = json.loads(request(f"{server.base}/bench/runs")[2]) - before
    return runs


def remove_redis_keys(project: Project, env: dict[str, str], prefix: str) -> int:
    # Template keys start with a hash tag, `{<prefix>:...}`, the others with the prefix.
    script = (
        "import os, redis; r = redis.Redis.from_url(os.environ['REDIS_URL']); "
        f"keys = list(r.scan_iter(match='*{prefix}*', count=1000)); "
        "[r.delete(*keys[i:i + 500]) for i in range(0, len(keys), 500)]; print(len(keys))"
    )
    return int(run([str(project.python), "-c", script], project.path, env))


def drop_dynamodb_table(project: Project, env: dict[str, str]) -> None:
    script = (
        "import os, botocore.session; c = botocore.session.get_session().create_client("
        "'dynamodb', endpoint_url=os.environ['DYNAMODB_ENDPOINT_URL'], "
        "region_name=os.environ['AWS_REGION']); "
        "c.delete_table(TableName=os.environ['DYNAMODB_TABLE'])"
    )
    run([str(project.python), "-c", script], project.path, env)


def memcached_command(sock: socket.socket, command: bytes, end: bytes) -> bytes:
    sock.sendall(command)
    received = b""
    while not received.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def remove_memcached_keys(prefix: str) -> int:
    """Delete this run's keys: memcached lists its keys through `lru_crawler metadump all`."""
    with socket.create_connection(MEMCACHED, timeout=30) as sock:
        dump = memcached_command(sock, b"lru_crawler metadump all\r\n", b"END\r\n")
        keys = [
            key
            for line in dump.decode().splitlines()
            if line.startswith("key=") and prefix in (key := unquote(line.split()[0][4:]))
        ]
        for key in keys:
            memcached_command(sock, f"delete {key}\r\n".encode(), b"\r\n")
    return len(keys)


class OtlpReceiver:
    """A local OTLP/HTTP endpoint that takes every export and answers 200 with an empty
    ExportTraceServiceResponse: the traced targets pay for exporting, nothing else."""

    def __init__(self) -> None:
        received = self.received = [0]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received[0] += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per export would drown the bench's output

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def median_load(loads: list[dict[str, Any]]) -> dict[str, float]:
    metrics = ("requests_per_second", "p50_ms", "p99_ms", "server_cpu_us")
    return {metric: statistics.median(load[metric] for load in loads) for metric in metrics}


def measure(projects: dict[str, Project], seconds: int, rounds: int, work: Path) -> dict[str, Any]:
    prefix = f"bench-{secrets.token_hex(6)}"
    env = clean_environment() | {
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "WARNING",
        # The loads measure HITs: nothing may expire halfway.
        "CACHE_TTL_SECONDS": "3600",
        "AUTH_CACHE_TTL_SECONDS": "3600",
        "SECRET_KEY": secrets.token_urlsafe(48),
        # One database for both bakes: the same user, token and items, so the same bytes.
        "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bench.db'}",
        "CACHE_PREFIX": prefix,
        "REDIS_URL": REDIS_URL,
        "MEMCACHED_URL": f"memcached://{MEMCACHED[0]}:{MEMCACHED[1]}",
        # A table of this run's own, created by the DynamoDB bake's migrate and dropped after.
        "DYNAMODB_TABLE": prefix,
        "DYNAMODB_ENDPOINT_URL": DYNAMODB_ENDPOINT_URL,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "BENCH_PAYLOAD": str(work / "payload.json"),
    }
    token = create_user(projects["redis"], env)
    migrate(projects["dynamodb"], env)
    auth = {"Authorization": f"Bearer {token}"}
    loads: dict[str, list[dict[str, Any]]] = {name: [] for name in TARGETS}
    results: dict[str, Any] = {"cache_prefix": prefix, "loads": loads}

    receiver = OtlpReceiver()

    def serve(name: str) -> Any:
        target = TARGETS[name]
        project = projects[target.bake]
        server_env = env | {
            key: value.format(otlp=receiver.url) for key, value in target.env.items()
        }
        server_env |= {"BENCH_PACKAGE": project.package, "BENCH_BACKEND": target.bake}
        factory = f"targets:{target.factory}"
        return serving(factory, server_env, project.path, project.python, BENCH_DIR)

    try:
        with ExitStack() as stack:
            pinned_threads = stack.enter_context(servers_pinned(WRK_CPU))
            log(f"cache servers: {pinned_threads} threads pinned to CPU {WRK_CPU}, beside wrk")
            results["cache_server_threads_pinned"] = pinned_threads
            servers = {"c": stack.enter_context(serve("c"))}
            body = seed_items(servers["c"], auth)
            (work / "payload.json").write_bytes(body)
            results["payload_bytes"] = len(body)
            for name in TARGETS:
                if name not in servers:
                    servers[name] = stack.enter_context(serve(name))
            for name, server in servers.items():
                check(name, TARGETS[name], server, auth, body)
                load(name, server, auth, 2, "warm-up")
            for number in range(1, rounds + 1):
                round_tag = f"round{number}-{secrets.token_hex(3)}"
                for name in TARGETS:
                    measured = load(name, servers[name], auth, seconds, round_tag)
                    if measured.failures:
                        raise SystemExit(f"bench: {name}: {measured.failures} failed requests")
                    log(
                        f"round {number} {name}: {measured.requests_per_second:.0f} req/s, "
                        f"p99 {measured.p99_ms:.2f} ms, {measured.server_cpu_us:.0f} µs CPU/req"
                    )
                    loads[name].append(asdict(measured))
            results["stampede_body_runs"] = {
                name: stampede(servers[name]) for name in ("b", "c", "bm", "m", "d")
            }
        results["otlp_exports_received"] = receiver.received[0]
    finally:
        receiver.close()
        removed = remove_redis_keys(projects["redis"], env, prefix)
        removed += remove_memcached_keys(prefix)
        log(f"removed {removed} keys under {prefix}")
        drop_dynamodb_table(projects["dynamodb"], env)
    return results


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    loads = results["loads"]
    medians = {name: median_load(rounds) for name, rounds in loads.items()}
    goals = []
    for goal in GOALS:
        # Each round's ratio of two loads made back to back, then the median of those: a burst
        # from elsewhere on a shared machine moves one round, not the verdict.
        each_round = [
            goal.value({name: rounds[number] for name, rounds in loads.items()})
            for number in range(len(loads["L"]))
        ]
        value = statistics.median(each_round)
        goals.append(
            {
                "goal": goal.name,
                "bound": goal.bound,
                "value": value,
                "rounds": each_round,
                "met": goal.met(value),
            }
        )
    miss, bypass = medians["miss"], medians["bypass"]
    return {
        "medians": medians,
        "goals": goals,
        "tracing_on_vs_off": {
            tier: medians[f"{tier}-traced"]["requests_per_second"]
            / medians[tier]["requests_per_second"]
            for tier in ("c", "s")
        },
        "miss_vs_bypass": {
            "requests_per_second": miss["requests_per_second"] / bypass["requests_per_second"],
            "p99": miss["p99_ms"] / bypass["p99_ms"],
            "extra_server_cpu_us": miss["server_cpu_us"] - bypass["server_cpu_us"],
        },
    }


def timed_suite(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """The wall time of the whole command, and the time pytest itself reports."""
    started = time.perf_counter()
    try:
        output = run(args, cwd, env, timeout=3600)
    except RuntimeError as error:
        return {"failed": str(error)[-8000:]}  # the tail holds pytest's summary
    wall = time.perf_counter() - started
    reported = re.search(r" in ([\d.]+)s", output.strip().splitlines()[-1])
    return {"wall": wall, "pytest": float(reported.group(1)) if reported else wall}


def tables(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        "| tier | what | req/s | p50 ms | p99 ms | server CPU µs/req |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, medians in summary["medians"].items():
        lines.append(
            f"| {name} | {TARGETS[name].label} | {medians['requests_per_second']:.0f} | "
            f"{medians['p50_ms']:.2f} | {medians['p99_ms']:.2f} | "
            f"{medians['server_cpu_us']:.0f} |"
        )
    lines += [
        "",
        "| goal | bound | median of rounds | | each round |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for goal in summary["goals"]:
        verdict = "met" if goal["met"] else "**missed**"
        each_round = " ".join(f"{value:.2f}" for value in goal["rounds"])
        lines.append(
            f"| {goal['goal']} | {goal['bound']} | {goal['value']:.2f} | {verdict} | {each_round} |"
        )
    cost = summary["miss_vs_bypass"]
    lines += [
        "",
        f"MISS vs bypass (no goal, reported): req/s {cost['requests_per_second']:.2f}x, "
        f"p99 {cost['p99']:.2f}x, {cost['extra_server_cpu_us']:+.0f} µs server CPU per request",
    ]
    traced = summary["tracing_on_vs_off"]
    lines.append(
        f"Tracing on vs off (no goal, reported; {report['otlp_exports_received']} OTLP exports "
        f"received): HIT req/s local tier {traced['c']:.2f}x, Redis {traced['s']:.2f}x"
    )
    runs = report["stampede_body_runs"]
    lines.append(
        f"Stampede ({STAMPEDE_REQUESTS} concurrent cold requests, body runs): "
        f"b {runs['b']}, c {runs['c']}, bm {runs['bm']}, m {runs['m']}, d {runs['d']}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each load (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="loads per target (default 3)")
    parser.add_argument(
        "--skip-suites", action="store_true", help="do not time the baked and template suites"
    )
    options = parser.parse_args()
    if options.rounds < 2:
        parser.error("--rounds must be at least 2: medians of one load hide its noise")
    wrk = ensure_wrk()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "wrk": f"{wrk} -t1 -c{CONNECTIONS} -d{options.seconds}s",
        "rounds": options.rounds,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work = Path(scratch)
        projects = {}
        for backend in ("redis", "memcached", "dynamodb"):
            log(f"baking and installing the {backend} project")
            projects[backend] = bake_and_install(backend, work)
        results = measure(projects, options.seconds, options.rounds, work)
        report |= results
        report["load_average_after"] = os.getloadavg()
        report["summary"] = summarize(results)
        default = projects["redis"]
        report["bake_seconds"] = default.bake_seconds
        report["install_seconds"] = default.install_seconds
        write(report)
        print(tables(report), flush=True)
        if not options.skip_suites:
            log("timing the default project's test suite")
            report["baked_suite"] = timed_suite(
                [UV, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"],
                default.path,
                clean_environment(),
            )
    if not options.skip_suites:
        log("timing the template's test suite (several minutes)")
        report["template_suite"] = timed_suite(
            [UV, "run", "--locked", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"],
            TEMPLATE_ROOT,
            clean_environment(),
        )
        write(report)
    print()
    print(f"bake: {report['bake_seconds']:.1f} s, install: {report['install_seconds']:.1f} s")
    for name in ("baked_suite", "template_suite"):
        if (timing := report.get(name)) is not None:
            if "failed" in timing:
                print(f"{name}: FAILED (see .bench/results.json)")
            else:
                print(f"{name}: {timing['pytest']:.1f} s (pytest), {timing['wall']:.1f} s (wall)")
    print(f"JSON: {RESULTS_DIR / 'results.json'}")
    return 0


def write(report: dict[str, Any]) -> None:
    (RESULTS_DIR / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
