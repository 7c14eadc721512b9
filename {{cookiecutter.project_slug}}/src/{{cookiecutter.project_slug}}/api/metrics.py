"""GET /metrics: every worker's metrics (metrics.py) in Prometheus' text format.

Who may read it: with METRICS_TOKEN set, callers that send `Authorization: Bearer
<METRICS_TOKEN>` (Prometheus' `authorization.credentials_file`); without it, anyone outside
production, and nobody in production (404), so a service is never exposed by omission.
METRICS_ENABLED=false turns counting and this route off.
"""

import hmac
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Metric, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from {{ cookiecutter.project_slug }}.api.deps import SettingsDep
from {{ cookiecutter.project_slug }}.settings import Settings

router = APIRouter(tags=["metrics"])

# The files of gauges that count only live processes: gauge_livesum_<pid>.db and the like.
LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


def require_reader(settings: Settings, authorization: str | None) -> None:
    if not settings.metrics_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
    if settings.metrics_token is None:
        if settings.environment == "production":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        return
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Metrics need the Bearer METRICS_TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def forget_dead_workers(directory: Path) -> None:
    """Drop the gauges of workers that died: they describe processes that are gone."""
    for path in directory.iterdir():
        if (match := LIVE_GAUGE_FILE.fullmatch(path.name)) and not alive(int(match[1])):
            mark_process_dead(int(match[1]), str(directory))


def has_values(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:  # a dead worker's live gauges, just removed
        return False


class WorkerFilesCollector(Collector):
    """Every worker's files, read as prometheus-client's MultiProcessCollector reads them, less
    the files a starting worker has created but not yet sized: read in between, such a file fails
    to parse (a 500 for the scrape), and it holds no value yet."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        files = [str(path) for path in self.directory.glob("*.db") if has_values(path)]
        metrics: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)
        return metrics


@router.get("/metrics", include_in_schema=False)
def read_metrics(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    # A plain `def`: reading the workers' files runs in the threadpool, not the event loop.
    require_reader(settings, authorization)
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    forget_dead_workers(directory)
    registry = CollectorRegistry()
    registry.register(WorkerFilesCollector(directory))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
