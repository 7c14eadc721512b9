"""`make bench`: this service's cached hit path against a route that does no work at all.

Serves the application under uvicorn (one worker, production logging) on a free port, creates a
user with some items, then drives `GET /health/live` (no work: the floor of this stack) and
`GET /api/items` (a cached HIT) with wrk, and prints requests per second and latencies.

It uses the configured database (DATABASE_URL, .env) and cache; the user it creates is named
`bench-<random>`. Standard library only, so other tools can import its helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ITEMS = 25


@dataclass(frozen=True)
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int


def find_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "bench: wrk is not installed; install it (Debian/Ubuntu: `sudo apt-get install wrk`, "
            "macOS: `brew install wrk`) and run again"
        )
    return wrk


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
    # Only the http:// URLs of the server this script started.
    prepared = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    with urllib.request.urlopen(prepared, timeout=30) as response:  # noqa: S310
        headers = {name.lower(): value for name, value in response.headers.items()}
        return response.status, headers, response.read()


@contextmanager
def serving(
    target: str,
    env: dict[str, str],
    cwd: Path,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> Iterator[str]:
    """Run `uvicorn --factory target` with one worker on a free port; yield its base URL.

    uvicorn comes from the environment of `python` (this script's by default).
    """
    port = free_port()
    uvicorn = Path(python).with_name("uvicorn")
    command = [str(uvicorn), "--factory", target, *extra_args, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=cwd, env=env)  # noqa: S603  # our own command
    base = f"http://127.0.0.1:{port}"
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
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def milliseconds(value: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if value.endswith(unit):
            return float(value.removesuffix(unit)) * factor
    raise ValueError(f"not a wrk duration: {value}")


def drive(url: str, token: str | None, seconds: int, connections: int = 32) -> Load:
    """Load `url` with wrk for `seconds` and read its report."""
    command = [find_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(  # noqa: S603  # our own command
        command, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
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
    return Load(
        requests_per_second=float(fields["rps"]),
        p50_ms=milliseconds(fields["50%"]),
        p99_ms=milliseconds(fields["99%"]),
        requests=int(fields["requests"]),
        failures=failures,
    )


def create_bench_user(env: dict[str, str], cwd: Path, python: str = sys.executable) -> str:
    """A new user's token, through the project's own command line."""
    package = next((cwd / "src").glob("*/__main__.py")).parent.name
    for command in (["migrate"], ["create-user", f"bench-{secrets.token_hex(4)}"]):
        result = subprocess.run(  # noqa: S603  # our own command
            [python, "-m", package, *command], cwd=cwd, env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"bench: {' '.join(command)} failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def seed_items(base: str, token: str) -> bytes:
    """Create ITEMS items; return the body of GET /api/items once it is a cache HIT."""
    auth = {"Authorization": f"Bearer {token}"}
    for number in range(ITEMS):
        item = {"name": f"item {number}", "description": f"the benchmark's item {number}"}
        request(f"{base}/api/items", "POST", item, auth)
    request(f"{base}/api/items", headers=auth)
    _, headers, body = request(f"{base}/api/items", headers=auth)
    if headers.get("x-fastapi-cache") != "HIT":
        raise SystemExit("bench: GET /api/items is not answered from the cache")
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="length of each load")
    options = parser.parse_args()
    find_wrk()
    package = next((PROJECT_ROOT / "src").glob("*/__main__.py")).parent.name
    env = dict(os.environ, ENVIRONMENT="production", LOG_LEVEL="WARNING")
    token = create_bench_user(env, PROJECT_ROOT)
    with serving(f"{package}.main:create_app", env, PROJECT_ROOT) as base:
        seed_items(base, token)
        floor = drive(f"{base}/health/live", None, options.seconds)
        hit = drive(f"{base}/api/items", token, options.seconds)
    print("| endpoint | req/s | p50 ms | p99 ms | failures |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, load in (("GET /health/live (no work)", floor), ("GET /api/items (HIT)", hit)):
        print(
            f"| {name} | {load.requests_per_second:.0f} | {load.p50_ms:.2f} | "
            f"{load.p99_ms:.2f} | {load.failures} |"
        )
    print(f"HIT / no work: {hit.requests_per_second / floor.requests_per_second:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
