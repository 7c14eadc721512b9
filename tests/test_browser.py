"""The baked service from a real browser: CORS with the cache in the path, and offline docs.

A baked Redis project runs under uvicorn with two workers against a Redis server of the test's
own. Pages on three origins, two of them in CORS_ORIGINS, call it from headless Chromium with a
bearer token, before and after the cache holds the entry; their scripts write what they saw into
the DOM, which Chromium dumps. The browser resolves no host name but 127.0.0.1, so anything a
page would load from a CDN fails, as it would on a machine with no internet.

Run with -s to see what the browser saw and the headers of a cross-origin HIT.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from cookiecutter.main import cookiecutter

from tests.baking import TEMPLATE_ROOT, BakedProject, clean_environment
from tests.servers import RedisServer, free_port, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

PYTHON_VERSION = "3.12"
WORKERS = 2
# Debian's headless build first (what scripts/services.sh installs), then full browsers.
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
BROWSER_SECONDS = 60
# FastAPI's default /docs loads Swagger UI from here; the control page shows it cannot load.
CDN_SWAGGER_JS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
RESULT = re.compile(r'<pre id="result">(.*?)</pre>', re.DOTALL)
# How Swagger UI renders each operation's path.
OPERATION_PATH = re.compile(r'class="opblock-summary-path" data-path="([^"]+)"')

# The page's script: each step is a fetch whose outcome (or the error that stopped it) goes
# into the DOM. `cache: "no-store"` keeps the browser's own HTTP cache out of the way, so every
# step reaches the service; the browser then sends `Cache-Control: no-cache`, which the
# service ignores. "{etag}" in a header stands for the last ETag this page read.
FETCH_SCRIPT = """
(async () => {
  const { api, steps } = JSON.parse(document.getElementById("steps").textContent);
  const results = [];
  let etag = null;
  for (const step of steps) {
    const headers = {};
    for (const [name, value] of Object.entries(step.headers)) {
      headers[name] = value.replace("{etag}", etag);
    }
    try {
      const response = await fetch(api + step.path, { headers, cache: "no-store" });
      const body = await response.text();
      etag = response.headers.get("ETag") || etag;
      results.push({
        step: step.name,
        status: response.status,
        cache: response.headers.get("X-FastAPI-Cache"),
        etag: response.headers.get("ETag"),
        request_id: response.headers.get("X-Request-ID"),
        body: body ? JSON.parse(body) : null,
      });
    } catch (error) {
      results.push({ step: step.name, error: error.name });
    }
  }
  document.getElementById("result").textContent = JSON.stringify(results);
})();
"""


def find_browser() -> str:
    for name in BROWSERS:
        if (path := shutil.which(name)) is not None:
            return path
    pytest.fail(f"no headless Chromium ({', '.join(BROWSERS)}); scripts/services.sh installs one")


class PageServer:
    """Serves pages this test writes, on an origin of its own (a free port on 127.0.0.1)."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path)
                self.send_response(200 if page is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, name: str, body: str) -> str:
        self.pages[f"/{name}"] = f"<!doctype html><html><body>{body}</body></html>".encode()
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def browse(url: str) -> str:
    """The DOM of `url` once its scripts are done, as headless Chromium renders it."""
    with tempfile.TemporaryDirectory(prefix="test-browser-") as profile:
        completed = subprocess.run(
            [
                find_browser(),
                "--headless",
                "--no-sandbox",  # the tests run as root
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                # No DNS and no other host: a page that needs the internet breaks, visibly.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                # Virtual time stands still while fetches are pending: the DOM is dumped once
                # the page's scripts have nothing left to wait for.
                "--virtual-time-budget=30000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=BROWSER_SECONDS,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def fetch_steps(page: PageServer, name: str, api: str, steps: list[dict[str, Any]]) -> list[Any]:
    """Run `steps` from a page on `page`'s origin; what each fetch saw, in order."""
    # JSON in a script element: only "</" could end it early.
    config = json.dumps({"api": api, "steps": steps}).replace("</", "<\\/")
    url = page.publish(
        name,
        f'<script id="steps" type="application/json">{config}</script>'
        f'<pre id="result">pending</pre><script>{FETCH_SCRIPT}</script>',
    )
    dom = browse(url)
    found = RESULT.search(dom)
    assert found is not None, dom[-3000:]
    assert found.group(1) != "pending", "the page's script did not finish"
    results: list[Any] = json.loads(html.unescape(found.group(1)))
    return results


def step(name: str, path: str, **headers: str) -> dict[str, Any]:
    return {"name": name, "path": path, "headers": headers}


@dataclass
class Service:
    project: BakedProject
    package: str
    env: dict[str, str]
    log: Path
    base: str = ""
    token: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def python(self, *args: str) -> str:
        return self.project.cli(self.package, self.env, *args)

    def start(self) -> None:
        self.process, port = self.project.serve(self.package, self.env, self.log, workers=WORKERS)
        self.base = f"http://127.0.0.1:{port}"
        wait_for_port(port, open_=True)
        deadline = time.monotonic() + 30
        while requests.get(f"{self.base}/health/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the service never became ready"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
            self.process = None

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Origins:
    allowed: PageServer
    other_allowed: PageServer
    refused: PageServer


@pytest.fixture(scope="module")
def origins() -> Iterator[Origins]:
    servers = Origins(PageServer(), PageServer(), PageServer())
    yield servers
    for server in (servers.allowed, servers.other_allowed, servers.refused):
        server.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, origins: Origins) -> Iterator[Service]:
    output = tmp_path_factory.mktemp("browser")
    path = Path(
        cookiecutter(
            str(TEMPLATE_ROOT),
            no_input=True,
            output_dir=str(output),
            extra_context={
                "cache_backend": "redis",
                "database": "sqlite",
                "python_version": PYTHON_VERSION,
            },
        )
    )
    project = BakedProject(path, PYTHON_VERSION)
    project.install()
    package = next(path.glob("src/*/__init__.py")).parent.name
    redis = RedisServer()
    redis.start()
    env = clean_environment() | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite+aiosqlite:///{output / 'service.db'}",
        "REDIS_URL": redis.url,
        "CACHE_PREFIX": package,
        # The machine runs other suites meanwhile: a generous cache deadline keeps writes 2xx.
        "CACHE_TIMEOUT_SECONDS": "3",
        # One as JSON would be read too; the comma-separated form is the one people type.
        "CORS_ORIGINS": f"{origins.allowed.origin}, {origins.other_allowed.origin}",
    }
    service = Service(project, package, env, output / "service.log")
    service.python("migrate")
    service.token = service.python("create-user", "alice").strip().splitlines()[-1]
    service.start()
    try:
        yield service
    finally:
        service.stop()
        redis.stop()


def report(name: str, figures: Any) -> None:
    print(f"\nbrowser {name}: " + json.dumps(figures, indent=1))


def test_pages_on_allowed_origins_share_one_cached_entry_and_others_are_refused(
    service: Service, origins: Origins
) -> None:
    created = requests.post(
        f"{service.base}/api/items",
        json={"name": "lamp", "description": None},
        headers=service.auth(),
        timeout=10,
    )
    assert created.status_code == 201
    item = f"/api/items/{created.json()['id']}"
    bearer = f"Bearer {service.token}"

    # Before the cache holds the item: the refused origin's preflight fails, so its GET is
    # never sent. Its plain GET of the public stats is sent (no preflight for it), answered and
    # cached by the service, and kept from the page by the browser.
    refused_before = fetch_steps(
        origins.refused,
        "before.html",
        service.base,
        [step("item", item, Authorization=bearer), step("stats", "/api/stats")],
    )
    allowed = fetch_steps(
        origins.allowed,
        "allowed.html",
        service.base,
        [
            step("miss", item, Authorization=bearer),
            step("hit", item, Authorization=bearer),
            step("not modified", item, Authorization=bearer, **{"If-None-Match": "{etag}"}),
            step("stats", "/api/stats"),
        ],
    )
    other_allowed = fetch_steps(
        origins.other_allowed,
        "other.html",
        service.base,
        [
            step("hit filled by the other origin", item, Authorization=bearer),
            step("not modified", item, Authorization=bearer, **{"If-None-Match": "{etag}"}),
            step("stats", "/api/stats"),
        ],
    )
    refused_after = fetch_steps(
        origins.refused,
        "after.html",
        service.base,
        [step("item", item, Authorization=bearer), step("stats", "/api/stats")],
    )
    # What the browser could not show: the headers of a cross-origin HIT as sent.
    hit = requests.get(
        f"{service.base}{item}",
        headers=service.auth() | {"Origin": origins.other_allowed.origin},
        timeout=10,
    )
    report(
        "fetches",
        {
            "origins": {
                "allowed": origins.allowed.origin,
                "other allowed": origins.other_allowed.origin,
                "refused": origins.refused.origin,
            },
            "refused, before the entry": refused_before,
            "allowed": allowed,
            "other allowed": other_allowed,
            "refused, after the entry": refused_after,
        },
    )
    report("cross-origin HIT headers", dict(hit.headers))

    miss, second, not_modified, stats = allowed
    assert (miss["status"], miss["cache"], miss["body"]["name"]) == (200, "MISS", "lamp")
    assert miss["etag"].startswith('"')
    assert miss["request_id"]
    assert (second["status"], second["cache"], second["etag"]) == (200, "HIT", miss["etag"])
    assert second["request_id"] != miss["request_id"]
    assert (not_modified["status"], not_modified["body"]) == (304, None)
    assert (stats["status"], stats["cache"]) == (200, "HIT")  # filled by the refused page

    other_hit, other_not_modified, other_stats = other_allowed
    assert (other_hit["status"], other_hit["cache"]) == (200, "HIT")
    assert other_hit["body"] == miss["body"]
    assert other_hit["etag"] == miss["etag"]
    assert (other_not_modified["status"], other_not_modified["cache"]) == (304, "HIT")
    assert (other_stats["status"], other_stats["cache"]) == (200, "HIT")

    for refused in (refused_before, refused_after):
        assert [result.get("error") for result in refused] == ["TypeError", "TypeError"]

    assert hit.headers["x-fastapi-cache"] == "HIT"
    assert hit.headers["access-control-allow-origin"] == origins.other_allowed.origin
    assert {"authorization", "origin"} <= {
        token.strip().lower() for token in hit.headers["vary"].split(",")
    }


def test_the_docs_render_their_operations_with_no_network(
    service: Service, origins: Origins
) -> None:
    swagger = browse(f"{service.base}/docs")
    redoc = browse(f"{service.base}/redoc")
    # The same browser, asked for Swagger UI from the CDN FastAPI's default page uses.
    control = browse(
        origins.allowed.publish(
            "cdn.html",
            f'<script src="{CDN_SWAGGER_JS}"></script><pre id="result"></pre><script>'
            'document.getElementById("result").textContent = typeof SwaggerUIBundle;</script>',
        )
    )

    operations = sorted(set(OPERATION_PATH.findall(swagger)))
    report("swagger operations", operations)
    assert {"/api/items", "/api/items/{item_id}", "/api/me", "/health/ready"} <= set(operations)
    assert "/api/items/{item_id}" in redoc
    assert "Orders Service" in redoc
    assert RESULT.findall(control) == ["undefined"]
