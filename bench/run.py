"""`make bench`: the cached hit path against the limit and against fastapi-cache2's quick start.

Bakes the default (Redis) project and the memory-backend one, serves each application under
uvicorn with one worker, and drives it with wrk from a separate process. For each backend, side
by side in this one run: (a) the same endpoint and payload with no caching and no work, (b)
fastapi-cache2 wired as its quick start shows, (c) the template's cached endpoint on a HIT.
Then a stampede (50 concurrent cold requests for one key), the bake time, the baked suite's
time and the template suite's time. Prints a table and JSON (also written to .bench/).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TEMPLATE_ROOT))

from tests.baking import UV, clean_environment, find_python  # noqa: E402

BENCH_DIR = TEMPLATE_ROOT / "bench"
RESULTS_DIR = TEMPLATE_ROOT / ".bench"
PYTHON_VERSION = "3.12"
STAMPEDE_REQUESTS = 50
TARGETS = {
    "limit": "targets:limit_app",
    "naive": "targets:naive_app",
    "template": "targets:template_app",
}


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: `{' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
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
    bake_seconds: float
    install_seconds: float
    # The baked project's scripts/bench.py: its server, load and setup helpers.
    bench: ModuleType


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
    return Project(path, package, baked - started, installed - baked, load_bench(path, backend))


def load_bench(project: Path, name: str) -> ModuleType:
    module_name = f"baked_bench_{name}"
    spec = importlib.util.spec_from_file_location(module_name, project / "scripts" / "bench.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench: no scripts/bench.py in {project}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def stampede(tools: ModuleType, base: str) -> int:
    """How many times the body ran for STAMPEDE_REQUESTS concurrent cold requests of one key."""
    request = tools.request
    before = json.loads(request(f"{base}/bench/runs")[2])
    url = f"{base}/bench/slow?round={secrets.randbelow(10**9)}"
    start = threading.Barrier(STAMPEDE_REQUESTS)

    def call(_: int) -> int:
        start.wait()
        status: int = request(url)[0]
        return status

    with ThreadPoolExecutor(STAMPEDE_REQUESTS) as pool:
        statuses = list(pool.map(call, range(STAMPEDE_REQUESTS)))
    if statuses != [200] * STAMPEDE_REQUESTS:
        raise SystemExit(f"bench: stampede answers were not all 200: {sorted(set(statuses))}")
    runs: int = json.loads(request(f"{base}/bench/runs")[2]) - before
    return runs


def remove_redis_keys(project: Project, env: dict[str, str], prefix: str) -> None:
    script = (
        "import os, redis; r = redis.Redis.from_url(os.environ['REDIS_URL']); "
        f"[r.delete(k) for k in r.scan_iter(match='{prefix}*')]"
    )
    run([str(project.path / ".venv" / "bin" / "python"), "-c", script], project.path, env)


def measure_backend(
    backend: str, project: Project, seconds: int, rounds: int, work: Path
) -> dict[str, Any]:
    tools = project.bench
    prefix = f"bench-{secrets.token_hex(6)}"
    env = clean_environment() | {
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "WARNING",
        # The loads measure HITs: nothing may expire halfway. (With 60 s, the round in which
        # the entry and the identity expired showed a p99 near 50 ms: every connection then took
        # the full path once, and the local copies were refilled.)
        "CACHE_TTL_SECONDS": "3600",
        "AUTH_CACHE_TTL_SECONDS": "3600",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite+aiosqlite:///{work / backend}.db",
        "CACHE_PREFIX": prefix,
        "BENCH_PACKAGE": project.package,
        "BENCH_BACKEND": backend,
        "BENCH_PAYLOAD": str(work / f"{backend}-payload.json"),
    }
    if backend == "redis":
        env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    python = str(project.path / ".venv" / "bin" / "python")
    token = tools.create_bench_user(env, project.path, python)
    auth = {"Authorization": f"Bearer {token}"}
    results: dict[str, Any] = {"loads": {name: [] for name in TARGETS}}

    def serve(name: str) -> Any:
        app_dir = ["--app-dir", str(BENCH_DIR)]
        return tools.serving(TARGETS[name], env, project.path, app_dir, python)

    try:
        with ExitStack() as servers:
            template = servers.enter_context(serve("template"))
            items = tools.seed_items(template, token)
            # The other two serve exactly this payload.
            (work / f"{backend}-payload.json").write_bytes(items)
            bases = {
                "limit": servers.enter_context(serve("limit")),
                "naive": servers.enter_context(serve("naive")),
                "template": template,
            }
            for name, base in bases.items():
                # Warm up: the first call is a MISS; the loads then measure HITs.
                tools.request(f"{base}/api/items", headers=auth)
                _, headers, body = tools.request(f"{base}/api/items", headers=auth)
                if name != "limit" and headers.get("x-fastapi-cache") != "HIT":
                    raise SystemExit(f"bench: {name} did not answer from the cache")
                if json.loads(body) != json.loads(items):
                    raise SystemExit(f"bench: {name} serves a different payload")
                tools.drive(f"{base}/api/items", token, 2)
            for round_number in range(rounds):
                for name, base in bases.items():
                    load = tools.drive(f"{base}/api/items", token, seconds)
                    rate = load.requests_per_second
                    log(f"{backend} {name} round {round_number + 1}: {rate:.0f} req/s")
                    results["loads"][name].append(asdict(load))
            results["stampede_body_runs"] = {
                name: stampede(tools, bases[name]) for name in ("naive", "template")
            }
    finally:
        if backend == "redis":
            remove_redis_keys(project, env, prefix)
    results["payload_bytes"] = len(items)
    return results


def best(loads: list[dict[str, Any]]) -> dict[str, Any]:
    return max(loads, key=lambda load: load["requests_per_second"])


def summarize(backend: str, results: dict[str, Any]) -> dict[str, Any]:
    limit, naive, template = (best(results["loads"][name]) for name in TARGETS)
    return {
        "backend": backend,
        "limit": limit,
        "naive": naive,
        "template_hit": template,
        "hit_vs_limit": template["requests_per_second"] / limit["requests_per_second"],
        "hit_vs_naive": template["requests_per_second"] / naive["requests_per_second"],
        "hit_p99_vs_limit_p99": template["p99_ms"] / limit["p99_ms"],
        "stampede_body_runs": results["stampede_body_runs"],
        "payload_bytes": results["payload_bytes"],
        "every_round": results["loads"],
        "failures": sum(load["failures"] for loads in results["loads"].values() for load in loads),
    }


def timed_suite(args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """The wall time of the whole command, and the time pytest itself reports."""
    started = time.perf_counter()
    output = run(args, cwd, env, timeout=3600)
    wall = time.perf_counter() - started
    reported = re.search(r" in ([\d.]+)s", output.strip().splitlines()[-1])
    return {"wall": wall, "pytest": float(reported.group(1)) if reported else wall}


def table(summaries: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | endpoint | req/s | p50 ms | p99 ms |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    labels = {
        "limit": "(a) no cache, no work",
        "naive": "(b) fastapi-cache2 quick start, HIT",
        "template_hit": "(c) template, HIT",
    }
    for summary in summaries:
        for key, label in labels.items():
            load = summary[key]
            lines.append(
                f"| {summary['backend']} | {label} | {load['requests_per_second']:.0f} | "
                f"{load['p50_ms']:.2f} | {load['p99_ms']:.2f} |"
            )
    lines.append("")
    lines.append("| backend | c/a | c/b | p99 c/a | stampede runs: naive / template |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for summary in summaries:
        runs = summary["stampede_body_runs"]
        lines.append(
            f"| {summary['backend']} | {summary['hit_vs_limit']:.2f} | "
            f"{summary['hit_vs_naive']:.2f} | {summary['hit_p99_vs_limit_p99']:.2f} | "
            f"{runs['naive']} / {runs['template']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each load (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="loads per endpoint; best is kept")
    parser.add_argument(
        "--skip-template-suite", action="store_true", help="do not time the template's suite"
    )
    parser.add_argument(
        "--backends", nargs="+", default=["redis", "memory"], choices=["redis", "memory"]
    )
    options = parser.parse_args()
    ensure_wrk()
    report: dict[str, Any] = {"seconds_per_load": options.seconds, "rounds": options.rounds}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work = Path(scratch)
        summaries = []
        projects = {}
        for backend in options.backends:
            log(f"baking and installing the {backend} project")
            projects[backend] = project = bake_and_install(backend, work)
            log(f"measuring {backend}")
            results = measure_backend(backend, project, options.seconds, options.rounds, work)
            summaries.append(summarize(backend, results))
        report["backends"] = summaries
        default = projects[options.backends[0]]
        report["bake_seconds"] = default.bake_seconds
        report["install_seconds"] = default.install_seconds
        log("timing the default project's test suite")
        baked_env = clean_environment()
        report["baked_suite"] = timed_suite(
            [UV, "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"],
            default.path,
            baked_env,
        )
    if not options.skip_template_suite:
        log("timing the template's test suite (several minutes)")
        report["template_suite"] = timed_suite(
            [UV, "run", "--locked", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"],
            TEMPLATE_ROOT,
            clean_environment(),
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(table(report["backends"]))
    print()
    print(f"bake: {report['bake_seconds']:.1f} s, install: {report['install_seconds']:.1f} s")
    for name in ("baked_suite", "template_suite"):
        if name in report:
            timing = report[name]
            print(f"{name}: {timing['pytest']:.1f} s (pytest), {timing['wall']:.1f} s (wall)")
    print()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
