"""The redis bake on a Redis Cluster of 3 masters and 3 replicas that this module starts itself.

The baked suite's cache tests run against the cluster (REDIS_CLUSTER=true); then uvicorn with two
workers serves the bake while one master is killed under reads and writes, and a replica takes
its slots. Prints what it measured (see it with -rA, or -s without xdist).
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.baking import UV, BakedProject, clean_environment
from tests.servers import RedisCluster, RedisServer
from tests.test_hung_cache import (
    Reply,
    Service,
    bake,
    fetch,
    new_account,
    poll,
    print_rounds,
    shown_name,
    start_service,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("redis-cluster")]

# The whole baked suite but the tests of one server: those that cut a proxy in front of it (a
# cluster client connects to each node directly; the cluster's outage is the failover below),
# and the pipelined reads, which a cluster client does not batch.
SINGLE_SERVER_TESTS = [
    "tests/cache/test_cache_server.py::test_an_outage_serves_200s_warns_once_and_caching_resumes",
    "tests/cache/test_cache_server.py::test_a_write_is_tried_while_the_breaker_is_open_and_closes_it",
    "tests/cache/test_batching.py::test_concurrent_reads_share_round_trips_and_each_gets_its_own_values",
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    servers = RedisCluster()
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def redis_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[BakedProject, str]:
    return bake(tmp_path_factory.mktemp("cluster-bake"), "redis")


def test_the_baked_suite_passes_on_a_cluster(
    cluster: RedisCluster, redis_project: tuple[BakedProject, str]
) -> None:
    project, _ = redis_project
    report = project.path / "cluster-report.xml"
    env = clean_environment() | {"REDIS_CLUSTER": "true", "REDIS_URL": cluster.url}
    result = project.run(
        UV,
        "run",
        "--no-sync",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *(option for test in SINGLE_SERVER_TESTS for option in ("--deselect", test)),
        env=env,
    )
    assert result.returncode == 0, result.explain()
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    assert int(suite.get("tests", 0)) > 50, result.explain()
    assert suite.get("skipped") == "0", result.explain()


def keyslot_master(cluster: RedisCluster, key: str) -> RedisServer:
    """The master serving `key`'s slot now."""
    slot = int(cluster.nodes[0].cli("CLUSTER", "KEYSLOT", key))
    for master in cluster.masters():
        for line in master.cli("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if "myself" in fields[2]:
                for served in fields[8:]:
                    first, _, last = served.partition("-")
                    if int(first) <= slot <= int(last or first):
                        return master
    raise LookupError(f"no master serves slot {slot}")


@dataclass
class Read:
    started: float
    # The number of the last write that had answered 2xx when the read began.
    committed: int
    view: str
    reply: Reply


def written_number(name: str | None) -> int | None:
    return None if name is None else int(name.rpartition("-w")[2])


def test_a_master_killed_under_load_fails_over_without_errors_or_stale_reads(
    tmp_path_factory: pytest.TempPathFactory,
    cluster: RedisCluster,
    redis_project: tuple[BakedProject, str],
) -> None:
    env = {"REDIS_CLUSTER": "true", "REDIS_URL": cluster.url, "REDIS_MIN_REPLICAS": "1"}
    service = start_service(tmp_path_factory.mktemp("cluster-failover"), redis_project, env)
    try:
        run_failover(service, cluster)
    finally:
        service.stop()


def run_failover(service: Service, cluster: RedisCluster) -> None:
    account = new_account(service)
    package = service.package
    victim = keyslot_master(cluster, "{" + f"{package}:user:{account.user_id}" + "}")
    committed = 0
    reads: list[Read] = []
    writes: list[tuple[float, int, Reply]] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            started, before = time.monotonic(), committed
            for view, path in (
                ("detail", f"/api/items/{account.item_id}"),
                ("list", "/api/items"),
            ):
                reads.append(
                    Read(started, before, view, fetch("GET", service.url(path), account.token))
                )

    def writer() -> None:
        nonlocal committed
        number = 0
        while not done.is_set():
            number += 1
            url = service.url(f"/api/items/{account.item_id}")
            reply = fetch("PUT", url, account.token, json={"name": f"{account.name}-w{number}"})
            writes.append((time.monotonic(), number, reply))
            if reply.status == 200:
                committed = number
            time.sleep(0.2)

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        killed_at = time.monotonic()
        victim.crash()
        promoted = poll(
            lambda: victim not in cluster.masters() and len(cluster.masters()) == 3, 60, 0.2
        )
        assert promoted is not None, "no replica was promoted"
        # The killed node comes back, as an orchestrator restarts it: a replica of the new
        # master, so REDIS_MIN_REPLICAS=1 can be met again.
        victim.start()
        cluster.wait_until_healthy()
        rejoined = time.monotonic() - killed_at

        def written_again() -> bool:
            return any(w[0] > killed_at + rejoined and w[2].status == 200 for w in writes)

        # A write after the rejoin succeeds: its invalidation reaches the new master and a
        # replica (REDIS_MIN_REPLICAS=1).
        assert poll(written_again, 60, 0.2) is not None, "no write succeeded again"
        written = time.monotonic() - killed_at

        def cached_again() -> bool:
            recent = [r for r in reads[-6:] if r.started > killed_at + written]
            return {r.view for r in recent if r.reply.hit} == {"detail", "list"}

        assert poll(cached_again, 60, 0.2) is not None, "caching never resumed"
        resumed = time.monotonic() - killed_at
        time.sleep(1)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    during = [r for r in reads if r.started >= killed_at]
    non_200 = [r.reply.status for r in during if r.reply.status != 200]
    stale = []
    for read in reads:
        shown = written_number(shown_name(read.view, read.reply, account))
        if shown is None or shown < read.committed:
            stale.append((read.view, read.reply.status, shown, read.committed))
    after_kill = [w for w in writes if w[0] >= killed_at]
    row = {
        "reads after the kill": len(during),
        "non-200 reads": len(non_200),
        "writes after the kill 2xx/503": (
            f"{sum(w[2].status == 200 for w in after_kill)}/"
            f"{sum(w[2].status == 503 for w in after_kill)}"
        ),
        "promoted after s": round(promoted, 1),
        "killed node rejoined after s": round(rejoined, 1),
        "a write 2xx again after s": round(written, 1),
        "every view HIT after that write, after s": round(resumed, 1),
        "stale reads": len(stale),
    }
    print_rounds("a Redis Cluster master killed under reads and writes (2 workers)", [row])
    assert non_200 == [], row
    assert stale == [], (stale[:5], row)
    assert all(w[2].status in (200, 503) for w in writes), row
    assert any(w[2].status == 200 for w in after_kill), ("no write succeeded again", row)
