"""The baked Grafana dashboard queries only what a real scrape of the baked service holds.

The default project is baked, installed and served by uvicorn against a Redis of this test's
own, in production with a METRICS_TOKEN (as docker-compose runs it). Requests give every family
samples: a write, a MISS, a HIT, a bypass, an unmatched path, and a read while Redis is stopped
(a cache server error). Then every PromQL expression in monitoring/dashboard.json must name only
metrics, labels and exact label values found in GET /metrics.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.baking import BakedProject, clean_environment
from tests.scrapes import Sample, parse_samples
from tests.servers import RedisServer, free_port, wait_for_port

pytestmark = pytest.mark.slow

# Labels Prometheus adds to every series it scrapes: never in the service's own output.
TARGET_LABELS = {"job", "instance"}
# Names in an expression that are PromQL's words, not metrics.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# A name not followed by "(" (a function call) nor part of a longer name.
NAME = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def queried_metrics(expr: str) -> set[str]:
    """Metric names an expression selects: functions, groupings, matchers and ranges dropped.

    `histogram_quantile(0.99, sum by (le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))`
    gives {"x_bucket"}: sample names as a scrape shows them, _bucket, _sum and _count included.
    """
    stripped = GROUPING.sub(" ", expr)
    stripped = re.sub(r"\{[^}]*\}", " ", stripped)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", " ", stripped)  # range durations
    return {name for name in NAME.findall(stripped) if name.lower() not in KEYWORDS}


def used_labels(expr: str) -> set[str]:
    grouped = {label.strip() for labels in GROUPING.findall(expr) for label in labels.split(",")}
    return (grouped | {label for label, _, _ in MATCHER.findall(expr)}) - {""}


def exact_values(expr: str) -> set[tuple[str, str]]:
    """(label, value) of the `=` and `!=` matchers: values a scrape must show to mean anything."""
    return {(label, value) for label, op, value in MATCHER.findall(expr) if op in {"=", "!="}}


def test_the_expression_reader_finds_every_metric_a_query_names() -> None:
    quantile = (
        "histogram_quantile(0.99, sum by (le, route) (rate(x_bucket"
        '{job=~"$job", route!="/metrics"}[$__rate_interval])))'
    )
    assert queried_metrics(quantile) == {"x_bucket"}
    assert used_labels(quantile) == {"le", "route", "job"}
    assert exact_values(quantile) == {("route", "/metrics")}
    mean = "sum(rate(a_sum[5m])) / sum without (pid) (rate(a_count[5m])) > bool 0"
    assert queried_metrics(mean) == {"a_sum", "a_count"}
    assert used_labels(mean) == {"pid"}


@contextmanager
def serving(project: BakedProject, env: dict[str, str]) -> Iterator[str]:
    """uvicorn with two workers, as in production; yields the base URL."""
    package = next(project.path.glob("src/*/__init__.py")).parent.name
    port = free_port()
    uvicorn = str(project.path / ".venv" / "bin" / "uvicorn")
    command = [uvicorn, "--factory", f"{package}.main:create_app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "2", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=project.path, env=env)  # our own command
    try:
        wait_for_port(port, open_=True)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def cli(project: BakedProject, env: dict[str, str], *args: str) -> str:
    package = next(project.path.glob("src/*/__init__.py")).parent.name
    result = project.run(
        str(project.path / ".venv" / "bin" / "python"), "-m", package, *args, env=env
    )
    assert result.returncode == 0, result.explain()
    return result.output


def scrape(project: BakedProject, base: str, token: str) -> list[Sample]:
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.get(f"{base}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return parse_samples(project.path, response.text)


def drive(base: str, token: str, redis: RedisServer) -> None:
    """Requests that give every family the dashboard reads a sample."""
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{base}/api/items", json={"name": "lamp"}, headers=auth, timeout=10)
    assert created.status_code == 201, created.text
    url = f"{base}/api/items/{created.json()['id']}"
    seen = set()
    # Fresh connections reach either worker: read until a HIT came back.
    for _ in range(20):
        seen.add(requests.get(url, headers=auth, timeout=10).headers["x-fastapi-cache"])
        if "HIT" in seen:
            break
    assert seen == {"MISS", "HIT"}
    no_store = requests.get(url, headers=auth | {"Cache-Control": "no-store"}, timeout=10)
    assert "x-fastapi-cache" not in no_store.headers
    assert requests.get(f"{base}/no/such/path", timeout=10).status_code == 404
    redis.pause()
    try:
        # The cache's deadline passes: a MISS answered from the database, an error counted.
        during = requests.get(url, headers=auth, timeout=30)
    finally:
        redis.resume()
    assert during.status_code == 200, during.text
    assert during.headers["x-fastapi-cache"] == "MISS"


def test_every_dashboard_query_reads_metrics_a_real_scrape_has(
    bake: Callable[..., BakedProject], tmp_path: Path
) -> None:
    project = bake(cache_backend="redis", database="sqlite")
    dashboard = json.loads((project.path / "monitoring" / "dashboard.json").read_text("utf-8"))
    queries = expressions(dashboard)
    # What the issue asks to see: hit ratio, requests and latency, errors, the pool.
    assert {
        "cache_lookups_total",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "cache_server_errors_total",
        "db_pool_connections",
    } <= set().union(*map(queried_metrics, queries))
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"datasource", "job"}
    panel_ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))

    project.install()
    redis = RedisServer()
    redis.start()
    token = secrets.token_urlsafe(32)
    env = clean_environment() | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "METRICS_TOKEN": token,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dashboard.db'}",
        "REDIS_URL": redis.url,
        "CACHE_TIMEOUT_SECONDS": "0.5",
    }
    try:
        cli(project, env, "migrate")
        user_token = cli(project, env, "create-user", "alice").strip().splitlines()[-1]
        with serving(project, env) as base:
            drive(base, user_token, redis)
            samples = scrape(project, base, token)
    finally:
        redis.stop()

    names = {name for name, _, _ in samples}
    missing = []
    for expr in queries:
        metrics = queried_metrics(expr)
        labels: dict[str, set[str]] = {}
        for name, sample_labels, _ in samples:
            if name in metrics:
                for label, value in sample_labels.items():
                    labels.setdefault(label, set()).add(value)
        missing += [f"metric {name} in {expr}" for name in sorted(metrics - names)]
        missing += [
            f"label {label} in {expr}"
            for label in sorted(used_labels(expr) - labels.keys() - TARGET_LABELS)
        ]
        missing += [
            f"{label}={value!r} in {expr}"
            for label, value in sorted(exact_values(expr))
            if label not in TARGET_LABELS and value not in labels.get(label, set())
        ]
    assert missing == []
