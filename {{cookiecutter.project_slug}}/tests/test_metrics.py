"""GET /metrics: the families and labels, counts that match what clients saw, who may read it.

Counters belong to the test process and grow across tests, so each test compares a scrape
taken after its requests with one taken before.
"""

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.project_slug }} import metrics
from {{ cookiecutter.project_slug }}.api.metrics import WorkerFilesCollector
from {{ cookiecutter.project_slug }}.metrics import UNMATCHED_ROUTE
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import MakeUser, SettingsFactory, bearer, running

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: AsyncClient, headers: dict[str, str] | None = None) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grown(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def files() -> Samples:
    """What a scrape would read now (the endpoint's collector), without yielding to the loop."""
    registry = CollectorRegistry()
    registry.register(WorkerFilesCollector(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
    return parse(generate_latest(registry).decode())


def lookups(before: Samples, after: Samples, namespace: str) -> Counter[str]:
    """cache_lookups_total's growth in `namespace`, by result (and tier, for hits)."""
    grown: Counter[str] = Counter()
    for (name, labels), count in after.items():
        found = dict(labels)
        if name == "cache_lookups_total" and found["namespace"] == namespace:
            result = "hit:" + found["tier"] if found["result"] == "hit" else found["result"]
            grown[result] += int(count - before.get((name, labels), 0.0))
    return +grown


def seen(responses: Iterable[Response]) -> Counter[str]:
    """What the clients saw: X-FastAPI-Cache per response (none: a bypass)."""
    return Counter(response.headers.get("x-fastapi-cache", "bypass") for response in responses)


async def test_lookup_counts_match_what_clients_saw(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    before = await scrape(client)
    created = await client.post("/api/items", json={"name": "lamp"}, headers=alice)
    url = f"/api/items/{created.json()['id']}"
    no_store = alice | {"Cache-Control": "no-store"}
    responses = [
        await client.get(url, headers=alice),  # MISS
        await client.get(url, headers=alice),  # HIT
        await client.get(url, headers=no_store),  # bypass
        await client.get(url, headers=alice | {"If-None-Match": "*"}),  # HIT, 304
        await client.get("/api/items", headers=alice),  # MISS
        await client.get("/api/items", headers=alice),  # HIT
    ]
    await client.put(url, json={"name": "lamp 2"}, headers=alice)
    responses.append(await client.get(url, headers=alice))  # MISS: invalidated
    after = await scrape(client)

    assert seen(responses) == Counter({"MISS": 3, "HIT": 3, "bypass": 1})
    assert lookups(before, after, "items") == Counter({"miss": 3, "hit:shared": 3, "bypass": 1})
    # The POST and the PUT.
    assert grown(before, after, "cache_invalidations_total", namespace="items") == 2


async def test_a_bypass_is_counted_on_a_route_this_worker_has_not_served_yet(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    """Another worker may have served every earlier read: the route is learned from this one."""
    before = await scrape(client)
    response = await client.get("/api/items", headers=alice | {"Cache-Control": "no-store"})
    after = await scrape(client)

    assert response.status_code == 200
    assert "x-fastapi-cache" not in response.headers
    assert lookups(before, after, "items") == Counter({"bypass": 1})
    requests = grown(
        before, after, "http_requests_total", method="GET", route="/api/items", status="200"
    )
    assert requests == 1


async def test_a_scrape_while_a_worker_creates_its_file_still_answers(
    client: AsyncClient,
) -> None:
    """A starting worker creates its file empty and sizes it just after: a scrape in between."""
    await client.get("/health/live")  # something counted, whichever tests ran before
    starting = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) / "counter_4194304.db"
    starting.touch()
    try:
        samples = await scrape(client)
    finally:
        starting.unlink()
    assert any(name == "http_requests_total" for name, _ in samples)


async def test_requests_counted_in_one_turn_are_written_at_its_end_exactly() -> None:
    route = f"/batched/{uuid.uuid4()}"  # labels no other test counts
    labels = {"method": "GET", "route": route}
    durations = (0.0005, 0.003, 20.0)
    await asyncio.sleep(0)  # a batch another request opened is written

    for seconds in durations:
        metrics.count_request("GET", route, 200, seconds, (route, "hit", "local"))
    first = files()
    await asyncio.sleep(0)  # the turn ends
    after = files()

    # The first request of the turn was written before its bytes could go out.
    assert value(first, "http_requests_total", **labels, status="200") == 1
    assert value(first, "http_request_duration_seconds_count", **labels) == 1
    assert value(after, "http_requests_total", **labels, status="200") == 3
    assert value(after, "cache_lookups_total", namespace=route, result="hit", tier="local") == 3
    # The batch's buckets and sum are what three calls of observe would have written.
    buckets = {"0.001": 1, "0.005": 2, "5.0": 2, "10.0": 2, "+Inf": 3}
    for bound, count in buckets.items():
        assert value(after, "http_request_duration_seconds_bucket", **labels, le=bound) == count
    assert value(after, "http_request_duration_seconds_sum", **labels) == pytest.approx(20.0035)


async def test_routes_are_labelled_by_template(client: AsyncClient, alice: dict[str, str]) -> None:
    before = await scrape(client)
    for item_id in range(1000, 1040):
        assert (await client.get(f"/api/items/{item_id}", headers=alice)).status_code == 404
    assert (await client.get("/no/such/path/12345")).status_code == 404
    after = await scrape(client)

    routes = {
        dict(labels)["route"]
        for (name, labels), count in after.items()
        if name == "http_requests_total"
        and ("status", "404") in labels
        and count != before.get((name, labels))
    }
    assert routes == {"/api/items/{item_id}", UNMATCHED_ROUTE}
    template = {"method": "GET", "route": "/api/items/{item_id}"}
    assert grown(before, after, "http_requests_total", **template, status="404") == 40
    assert grown(before, after, "http_request_duration_seconds_count", **template) == 40


async def test_hits_answered_before_routing_carry_their_route(
    client: AsyncClient, alice: dict[str, str]
) -> None:
    created = await client.post("/api/items", json={"name": "lamp"}, headers=alice)
    url = f"/api/items/{created.json()['id']}"
    await client.get(url, headers=alice)
    before = await scrape(client)
    hit = await client.get(url, headers=alice)
    after = await scrape(client)

    assert hit.headers["x-fastapi-cache"] == "HIT"
    labels = {"method": "GET", "route": "/api/items/{item_id}", "status": "200"}
    assert grown(before, after, "http_requests_total", **labels) == 1


async def test_every_family_is_exported(client: AsyncClient, alice: dict[str, str]) -> None:
    await client.get("/api/items", headers=alice)
    response = await client.get("/metrics")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}

    assert families["http_requests"].type == "counter"
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["cache_lookups"].type == "counter"
    assert {"db_pool_connections", "worker_resident_memory_bytes"} <= set(families)
    pool = {dict(s.labels)["state"]: s.value for s in families["db_pool_connections"].samples}
    assert pool["in_use"] == 0  # every request gave its connection back
    assert pool["idle"] >= 0
    sample = families["http_requests"].samples[0]
    assert set(sample.labels) == {"method", "route", "status"}


async def test_no_secret_or_user_data_in_the_output(
    client: AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user, token = await make_user("carol-the-user")
    created = await client.post("/api/items", json={"name": "lamp"}, headers=bearer(token))
    item_url = f"/api/items/{created.json()['id']}"
    await client.get(item_url, headers=bearer(token))
    await client.get(item_url, headers=bearer(token))
    await client.get(f"/api/items/{token}", headers=bearer(token))
    text = (await client.get("/metrics")).text

    for secret in (token, user.name, settings.secret_key.get_secret_value(), item_url):
        assert secret not in text
    assert f'"{user.id}"' not in text


async def test_a_metrics_token_is_required_once_set(
    make_settings: SettingsFactory, make_app: Callable[[Settings], FastAPI]
) -> None:
    app = make_app(make_settings(metrics_token="scraper-token-0123456789"))
    async with running(app) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers=bearer("not-the-token"))
        assert wrong.status_code == 401
        assert (await client.get("/metrics", headers=bearer("scraper-token-0123456789"))).is_success


@pytest.mark.parametrize(
    "overrides",
    [{"environment": "production"}, {"metrics_enabled": False}],
    ids=["production-without-token", "disabled"],
)
async def test_metrics_are_not_served_without_a_token_in_production_or_when_off(
    make_settings: SettingsFactory,
    make_app: Callable[[Settings], FastAPI],
    overrides: dict[str, object],
) -> None:
    app = make_app(make_settings(**overrides))
    async with running(app) as client:
        assert (await client.get("/metrics")).status_code == 404
