"""Fixtures for baking the template, and a summary of what each baked test suite ran."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.baking import TEMPLATE_ROOT, BakedProject, SuiteCounts

# Real servers the baked projects' tests talk to; .ci/run (scripts/services.sh) starts them.
SERVICES = {
    "Redis": ("127.0.0.1", 6379),
    "PostgreSQL": ("127.0.0.1", 5432),
    "memcached": ("127.0.0.1", 11211),
    "DynamoDB Local": ("127.0.0.1", 8100),
}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def services() -> None:
    """Fail (never skip) when a server is down: a skipped matrix would prove nothing."""
    down = [
        f"{name} on {host}:{port}"
        for name, (host, port) in SERVICES.items()
        if not reachable(host, port)
    ]
    if down:
        pytest.fail(f"not reachable: {', '.join(down)}; start them with scripts/services.sh")


@pytest.fixture
def bake(cookies: Any) -> Callable[..., BakedProject]:
    """Bake the template with answers overriding the defaults; assert the bake succeeded."""

    def make(**answers: Any) -> BakedProject:
        result = cookies.bake(template=str(TEMPLATE_ROOT), extra_context=answers)
        assert result.exception is None, result.exception
        assert result.exit_code == 0
        return BakedProject(Path(result.project_path), answers.get("python_version", "3.12"))

    return make


@pytest.fixture
def record_suite(request: pytest.FixtureRequest) -> Callable[[SuiteCounts, float], None]:
    """Attach a baked suite's counts to the test's report (user_properties cross xdist workers)."""

    def record(counts: SuiteCounts, seconds: float) -> None:
        summary = {"counts": dataclasses.asdict(counts), "seconds": round(seconds, 1)}
        request.node.user_properties.append(("baked_suite", summary))

    return record


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = sorted(
        (report.nodeid.split("[")[-1].rstrip("]"), value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", [])
        if name == "baked_suite" and report.when == "call"
    )
    if not rows:
        return
    terminalreporter.section("baked test suites")
    for label, summary in rows:
        counts = SuiteCounts(**summary["counts"])
        terminalreporter.write_line(
            f"{label:24} {counts.passed:3} passed {counts.failures} failed {counts.errors} errors "
            f"{counts.skipped} skipped  (install + lint + test: {summary['seconds']:.0f} s)"
        )
