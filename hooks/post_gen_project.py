"""Prune the files of options that were not chosen, pick the license, write a private .env,
then print the next steps for the options chosen.

Runs inside the generated project. No network, no package installs: generation stays offline.
"""

import os
import secrets
import shlex
import shutil
from pathlib import Path

PACKAGE = Path("src") / "{{cookiecutter.project_slug}}"
TESTS = Path("tests")
MONITORING = Path("monitoring")

# Files that belong to one choice of an option; every path here must exist in the template
# (tests/test_post_gen.py checks that, so this list cannot drift from the real files).
OPTION_FILES: dict[str, dict[str, list[Path]]] = {
    "cache_backend": {
        backend: [
            PACKAGE / "cache" / f"{backend}.py",
            TESTS / "cache" / f"{backend}_service.py",
            TESTS / "cache" / f"test_{backend}.py",
        ]
        for backend in ("redis", "memcached", "memory", "dynamodb")
    },
    "database": {
        database: [
            PACKAGE / "db" / f"{database}.py",
            TESTS / "db" / f"{database}_database.py",
            TESTS / "db" / f"test_{database}.py",
        ]
        for database in ("sqlite", "postgresql")
    },
    "ci": {
        # .github holds the workflow and Dependabot's configuration; GitLab has no Dependabot,
        # so its projects get Renovate's configuration instead.
        "github": [Path(".github")],
        "gitlab": [Path(".gitlab-ci.yml"), Path("renovate.json")],
        "none": [],
    },
    "docker": {
        "True": [
            Path("Dockerfile"),
            Path(".dockerignore"),
            Path("docker-compose.yml"),
            # The compose monitoring profile's configuration; monitoring/dashboard.json stays.
            MONITORING / "prometheus.yml",
            MONITORING / "grafana-datasource.yml",
            MONITORING / "grafana-dashboards.yml",
        ],
        "False": [],
    },
}

# Files that serve several choices of an option, or one combination of options: kept only when
# each option named has one of the choices listed.
SHARED_OPTION_FILES: dict[Path, dict[str, set[str]]] = {
    TESTS / "cache" / "outage_proxy.py": {"cache_backend": {"redis", "memcached", "dynamodb"}},
    TESTS / "cache" / "test_cache_server.py": {"cache_backend": {"redis", "memcached", "dynamodb"}},
    # Only Redis has a channel (pub/sub) that keeps workers' local tiers coherent.
    PACKAGE / "cache" / "local.py": {"cache_backend": {"redis"}},
    TESTS / "cache" / "test_local_cache.py": {"cache_backend": {"redis"}},
    # Reads of concurrent requests in one round trip: the backends with a cache server and a
    # cheap multi-key read.
    PACKAGE / "cache" / "batching.py": {"cache_backend": {"redis", "memcached"}},
    TESTS / "cache" / "test_batching.py": {"cache_backend": {"redis", "memcached"}},
    # A private redis-server with maxmemory: what a full cache server does to the service.
    TESTS / "cache" / "test_redis_full.py": {"cache_backend": {"redis"}},
    # Metrics summed over uvicorn workers: a memory bake runs one process (its cache lock
    # refuses a second), so it has none to sum.
    TESTS / "test_metrics_workers.py": {"cache_backend": {"redis", "memcached", "dynamodb"}},
    # The lock that admits one process per database to the in-process cache.
    PACKAGE / "db" / "sqlite_lock.py": {"cache_backend": {"memory"}, "database": {"sqlite"}},
    PACKAGE / "db" / "postgresql_lock.py": {
        "cache_backend": {"memory"},
        "database": {"postgresql"},
    },
}

CHOSEN = {
    "cache_backend": "{{ cookiecutter.cache_backend }}",
    "database": "{{ cookiecutter.database }}",
    "ci": "{{ cookiecutter.ci }}",
    "docker": "{{ cookiecutter.docker }}",
}
LICENSE = "{{ cookiecutter.license }}"
LICENSES_DIR = Path("licenses")
SLUG = "{{ cookiecutter.project_slug }}"

# The servers each choice needs, where the project's settings and tests expect them by default.
SERVERS = {
    "postgresql": "PostgreSQL on 127.0.0.1:5432 (user postgres)",
    "redis": "Redis on 127.0.0.1:6379",
    "memcached": "memcached on 127.0.0.1:11211",
    "dynamodb": "DynamoDB Local on 127.0.0.1:8100",
}


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def remove_unchosen_option_files() -> None:
    for option, files_by_choice in OPTION_FILES.items():
        for choice, paths in files_by_choice.items():
            if choice != CHOSEN[option]:
                for path in paths:
                    remove(path)
    for path, conditions in SHARED_OPTION_FILES.items():
        if any(CHOSEN[option] not in choices for option, choices in conditions.items()):
            remove(path)


def install_license() -> None:
    """Keep the chosen license text as LICENSE; a proprietary project gets no LICENSE file."""
    chosen = LICENSES_DIR / f"{LICENSE}.txt"
    if chosen.exists():
        chosen.rename("LICENSE")
    shutil.rmtree(LICENSES_DIR)


def write_env_file() -> None:
    """A fresh SECRET_KEY per project; .env is git-ignored, so it never reaches a commit."""
    lines = [f"SECRET_KEY={secrets.token_urlsafe(48)}"]
    if CHOSEN["cache_backend"] == "dynamodb":
        # DynamoDB Local takes any key pair; on AWS, replace them or remove them for a role.
        lines += ["AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"]
    env_file = Path(".env")
    env_file.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    env_file.chmod(0o600)


def next_steps(project: Path, launched_from: str | None) -> str:
    """What to type next: where the project is, its two commands, and the servers they need.

    `launched_from` is the shell's working directory ($PWD; the hook itself runs inside the
    project), so the project is shown relative to it where it can be.
    """
    shown = project
    if launched_from and project.is_relative_to(launched_from):
        shown = project.relative_to(launched_from)
    chosen = (CHOSEN["database"], CHOSEN["cache_backend"])
    servers = [SERVERS[choice] for choice in chosen if choice in SERVERS]
    containers = CHOSEN["docker"] == "True" and servers
    lines = [
        f"Created {shown}. Next steps:",
        "",
        f"  cd {shlex.quote(str(shown))}",
        *(["  make services  # start the servers below in containers"] if containers else []),
        "  make run     # install, migrate, serve on http://127.0.0.1:8000",
        "  make test    # install and run the tests",
        "",
    ]
    if servers:
        lines.append(f"Both need {' and '.join(servers)}")
        lines.append("(README.md says how to point them elsewhere).")
    else:
        lines.append("No server needed: SQLite and the in-process cache live inside the service.")
    if CHOSEN["database"] == "postgresql":
        lines.append(f"The first `make run` creates the database {SLUG} if the server allows it.")
    if CHOSEN["cache_backend"] == "memory":
        lines.append("The in-process cache serves one process per database: run one worker")
        lines.append("(a second one refuses to start); cache_backend=redis or memcached scale out.")
    if CHOSEN["docker"] == "True":
        lines += ["Or run it in containers, servers included:", "  docker compose up --build"]
    return "\n".join(lines)


def main() -> None:
    remove_unchosen_option_files()
    install_license()
    write_env_file()
    print(next_steps(Path.cwd(), os.environ.get("PWD")))


if __name__ == "__main__":
    main()
