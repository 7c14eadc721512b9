"""Metrics under `uvicorn --workers 2`: every scrape shows both workers; a restart starts at zero.

Real processes on a free loopback port, each request on a fresh connection, so both workers
answer requests and scrapes.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.cache.{{ cookiecutter.cache_backend }}_service import cache_settings
from tests.conftest import MakeUser, bearer
from tests.ports import unused_tcp_port
from tests.test_metrics import Samples, parse, value

pytestmark = pytest.mark.anyio

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """uvicorn with two workers and `settings`; yields its base URL and its main process."""
    port = unused_tcp_port()
    env = os.environ | {name.upper(): str(value) for name, value in cache_settings().items()}
    env |= {
        "ENVIRONMENT": "test",
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "CACHE_PREFIX": settings.cache_prefix,
        "CACHE_TIMEOUT_SECONDS": str(settings.cache_timeout_seconds),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the test process's own directory
    uvicorn = Path(sys.executable).with_name("uvicorn")
    command = [str(uvicorn), "--factory", "{{ cookiecutter.project_slug }}.main:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)  # our own command
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while len(worker_pids(scrape(base, allow_down=True))) < 2:
            assert process.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "the two workers never reported"
            time.sleep(0.1)
        yield base, process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def scrape(base: str, allow_down: bool = False) -> Samples:
    try:
        response = httpx.get(f"{base}/metrics", timeout=10)
    except httpx.TransportError:
        if allow_down:
            return {}
        raise
    assert response.status_code == 200, response.text
    return parse(response.text)


def worker_pids(samples: Samples) -> set[str]:
    return {
        dict(labels)["pid"] for name, labels in samples if name == "worker_resident_memory_bytes"
    }


def lookups(samples: Samples) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (name, labels), count in samples.items():
        if name == "cache_lookups_total" and dict(labels)["namespace"] == "items":
            counts[dict(labels)["result"]] += int(count)
    return +counts


async def test_every_scrape_sums_both_workers_and_a_restart_starts_at_zero(
    settings: Settings, make_user: MakeUser
) -> None:
    _, token = await make_user("alice")
    await anyio.to_thread.run_sync(count_across_restarts, settings, token)


def count_across_restarts(settings: Settings, token: str) -> None:
    with serving(settings) as (base, process):
        # One connection per request: the kernel hands them to either worker.
        created = httpx.post(f"{base}/api/items", json={"name": "lamp"}, headers=bearer(token))
        url = f"{base}/api/items/{created.json()['id']}"
        seen: Counter[str] = Counter()
        for _ in range(30):
            response = httpx.get(url, headers=bearer(token), timeout=10)
            seen[response.headers["x-fastapi-cache"].lower()] += 1
            scraped = scrape(base)
            assert lookups(scraped) == seen
            assert len(worker_pids(scraped)) == 2
        labels = {"method": "GET", "route": "/api/items/{item_id}", "status": "200"}
        assert value(scraped, "http_requests_total", **labels) == 30
        assert seen["hit"] > 0
        run = next(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).parent.glob(f"{process.pid}-*"))

    with serving(settings) as (base, _):
        scraped = scrape(base)
        assert lookups(scraped) == Counter()
        assert value(scraped, "http_requests_total", **labels) == 0
    assert not run.exists()  # the dead run's files were removed
