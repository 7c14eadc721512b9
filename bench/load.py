"""Serving an application under uvicorn and loading it with wrk, each pinned to its own CPU.

Standard library only: this runs in the template's environment, and uvicorn comes from the
baked project's. The server is pinned to one CPU and wrk to another (taskset, where there is
one), so a load never competes with its own server for a core.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_CPU = 0
WRK_CPU = 1
# The cache servers the targets talk to, by program name (DynamoDB Local: java running its jar):
# pinned beside wrk for the run (servers_pinned), so none competes with the server under load.
CACHE_SERVERS = ("redis-server", "memcached")
DYNAMODB_LOCAL_JAR = "DynamoDBLocal.jar"
# Clock ticks per second of /proc/<pid>/stat's utime and stime.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int
    # The server's user + system CPU time per request during the load; under CPU contention
    # steadier than req/s, which also counts the time the server waited for its core.
    server_cpu_us: float


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


def pinned(cpu: int, command: Sequence[str]) -> list[str]:
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return list(command)
    return [taskset, "-c", str(cpu), *command]


def cache_server_threads() -> list[int]:
    """The thread ids of every running cache server (CACHE_SERVERS) on this machine."""
    threads = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            command = (process / "cmdline").read_bytes().replace(b"\0", b" ").decode().split()
            program = Path(command[0]).name if command else ""
            if program in CACHE_SERVERS or (program == "java" and DYNAMODB_LOCAL_JAR in command):
                threads += [int(task.name) for task in (process / "task").iterdir()]
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return threads


@contextmanager
def servers_pinned(cpu: int) -> Iterator[int]:
    """Pin the cache servers' threads to `cpu` for the block, then restore their CPUs.

    Yields how many threads were pinned: 0 where affinity cannot be set (one CPU, no
    permission over the servers, not Linux), and the run goes on unpinned.
    """
    restore: dict[int, set[int]] = {}
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        for thread in cache_server_threads():
            try:
                cpus = os.sched_getaffinity(thread)
                os.sched_setaffinity(thread, {cpu})
            except OSError:
                continue
            restore[thread] = cpus
    try:
        yield len(restore)
    finally:
        for thread, cpus in restore.items():
            with suppress(OSError):  # the thread ended during the run
                os.sched_setaffinity(thread, cpus)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def request(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} | (headers or {})
    # Only the http:// URLs of the servers this harness started.
    prepared = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    with urllib.request.urlopen(prepared, timeout=30) as response:
        received = {name.lower(): value for name, value in response.headers.items()}
        return response.status, received, response.read()


@contextmanager
def serving(
    target: str, env: dict[str, str], cwd: Path, python: Path, app_dir: Path
) -> Iterator[Server]:
    """Run `uvicorn --factory target` (one worker, pinned) on a free port until the block ends."""
    port = free_port()
    command = [str(python.with_name("uvicorn")), "--factory", target, "--app-dir", str(app_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--no-access-log", "--log-level", "warning"]
    # taskset execs uvicorn, so the process started here is the server itself.
    process = subprocess.Popen(pinned(SERVER_CPU, command), cwd=cwd, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: {target} did not start") from None
                time.sleep(0.1)
        yield Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    # The fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def milliseconds(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value.removesuffix(unit)) * factor
    raise ValueError(f"not a wrk duration: {value}")


def drive(
    server: Server,
    path: str,
    seconds: int,
    connections: int,
    headers: dict[str, str],
    script: tuple[Path, str] | None = None,
) -> Load:
    """Load `path` with wrk (one thread) for `seconds` and read its report.

    `script` is a wrk Lua script and the one argument it is given.
    """
    wrk = shutil.which("wrk") or "wrk"
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"{server.base}{path}")
    if script is not None:
        command[-1:-1] = ["-s", str(script[0])]
        command += ["--", script[1]]
    before = cpu_seconds(server.pid)
    output = subprocess.run(  # our own command
        pinned(WRK_CPU, command), capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    used = cpu_seconds(server.pid) - before
    fields: dict[str, str] = {}
    failures = 0
    for line in output.splitlines():
        words = line.split()
        if line.strip().startswith(("50%", "99%")):
            fields[words[0]] = words[1]
        elif line.startswith("Requests/sec:"):
            fields["rps"] = words[1]
        elif "requests in" in line:
            fields["requests"] = words[0]
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            failures += sum(int(word.strip(",")) for word in words if word.strip(",").isdigit())
    requests = int(fields["requests"])
    return Load(
        requests_per_second=float(fields["rps"]),
        p50_ms=milliseconds(fields["50%"]),
        p99_ms=milliseconds(fields["99%"]),
        requests=requests,
        failures=failures,
        server_cpu_us=used / max(requests, 1) * 1e6,
    )
