"""The post-generation hook: its manifest matches the files; .env and LICENSE come out right."""

import importlib.util
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from tests.baking import TEMPLATE_ROOT, BakedProject

PROJECT_TEMPLATE = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}"
PACKAGE_TEMPLATE = PROJECT_TEMPLATE / "src" / "{{cookiecutter.project_slug}}"
COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")
CHOICES = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
# A file named after a choice (redis.py, test_postgresql.py, memory_service.py) belongs to it.
CHOICE_NAMES = {choice for option in ("cache_backend", "database") for choice in CHOICES[option]}


def load_post_gen_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "post_gen_project", TEMPLATE_ROOT / "hooks" / "post_gen_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


POST_GEN_HOOK = load_post_gen_hook()
MANIFEST: dict[str, dict[str, list[Path]]] = POST_GEN_HOOK.OPTION_FILES
SHARED_FILES: dict[Path, dict[str, set[str]]] = POST_GEN_HOOK.SHARED_OPTION_FILES


def test_every_manifest_path_exists_in_the_template() -> None:
    listed = [
        path
        for files_by_choice in MANIFEST.values()
        for paths in files_by_choice.values()
        for path in paths
    ]
    missing = [
        str(path) for path in [*listed, *SHARED_FILES] if not (PROJECT_TEMPLATE / path).exists()
    ]
    assert missing == []
    for conditions in SHARED_FILES.values():
        for option, choices in conditions.items():
            assert choices <= set(CHOICES[option])


@pytest.mark.parametrize("option", ["cache_backend", "database", "ci"])
def test_the_manifest_covers_every_offered_choice(option: str) -> None:
    assert sorted(MANIFEST[option]) == sorted(CHOICES[option])


@pytest.mark.parametrize(
    "folder",
    [
        PACKAGE_TEMPLATE / "cache",
        PACKAGE_TEMPLATE / "db",
        PROJECT_TEMPLATE / "tests" / "cache",
        PROJECT_TEMPLATE / "tests" / "db",
    ],
    ids=lambda folder: str(folder.relative_to(PROJECT_TEMPLATE)),
)
def test_every_option_specific_file_is_in_the_manifest(folder: Path) -> None:
    listed = {
        PROJECT_TEMPLATE / path
        for files_by_choice in MANIFEST.values()
        for paths in files_by_choice.values()
        for path in paths
    } | {PROJECT_TEMPLATE / path for path in SHARED_FILES}
    option_specific = [
        path for path in folder.glob("*.py") if any(name in path.stem for name in CHOICE_NAMES)
    ]
    assert option_specific  # the folder does hold option-specific files
    assert [path.name for path in option_specific if path not in listed] == []


def test_each_bake_gets_its_own_private_secret_key(bake: Callable[..., BakedProject]) -> None:
    first, second = bake(), bake()
    keys = []
    for project in (first, second):
        env_file = project.path / ".env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        (line,) = env_file.read_text(encoding="utf-8").splitlines()
        name, _, key = line.partition("=")
        assert name == "SECRET_KEY"
        assert len(key) >= 32
        keys.append(key)
    assert keys[0] != keys[1]


def test_git_ignores_the_env_file(bake: Callable[..., BakedProject]) -> None:
    project = bake()
    subprocess.run(["git", "init", "--quiet"], cwd=project.path, check=True)
    ignored = subprocess.run(
        ["git", "check-ignore", "--quiet", ".env"], cwd=project.path, check=False
    )
    assert ignored.returncode == 0
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".env.example" in status
    assert ".env\n" not in status


@pytest.mark.parametrize(
    ("license_name", "expected"),
    [
        ("MIT", "MIT License"),
        ("Apache-2.0", "Apache License"),
        ("BSD-3-Clause", "BSD 3-Clause License"),
        ("Proprietary", None),
    ],
)
def test_the_chosen_license_is_installed(
    bake: Callable[..., BakedProject], license_name: str, expected: str | None
) -> None:
    project = bake(license=license_name, author_name="Ada Lovelace")
    assert not (project.path / "licenses").exists()
    license_file = project.path / "LICENSE"
    if expected is None:
        assert not license_file.exists()
        return
    text = license_file.read_text(encoding="utf-8")
    assert expected in text
    if license_name != "Apache-2.0":
        assert "Ada Lovelace" in text


@pytest.mark.parametrize("cache_backend", ["redis", "memcached", "memory", "dynamodb"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_only_the_chosen_backends_files_remain(
    bake: Callable[..., BakedProject], cache_backend: str, database: str
) -> None:
    project = bake(cache_backend=cache_backend, database=database)
    remaining = {
        path.stem
        for folder in (
            "src/orders_service/cache",
            "src/orders_service/db",
            "tests/cache",
            "tests/db",
        )
        for path in (project.path / folder).glob("*.py")
    }
    named_after_a_choice = {stem for stem in remaining if any(c in stem for c in CHOICE_NAMES)}
    # The in-process cache's lock lives in the database's own module.
    memory_lock = {f"{database}_lock"} if cache_backend == "memory" else set()
    # A private redis-server filled up: what a full cache server does to the service.
    redis_full = {"test_redis_full"} if cache_backend == "redis" else set()
    assert named_after_a_choice == {
        cache_backend,
        f"{cache_backend}_service",
        f"test_{cache_backend}",
        database,
        f"{database}_database",
        f"test_{database}",
        *memory_lock,
        *redis_full,
    }


SERVER_LINES = {
    "postgresql": "PostgreSQL on 127.0.0.1:5432 (user postgres)",
    "redis": "Redis on 127.0.0.1:6379",
    "memcached": "memcached on 127.0.0.1:11211",
    "dynamodb": "DynamoDB Local on 127.0.0.1:8100",
}


@pytest.mark.parametrize("docker", [True, False], ids=["docker", "no-docker"])
@pytest.mark.parametrize("cache_backend", ["redis", "memcached", "memory", "dynamodb"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_next_steps_fit_the_choices(
    bake: Callable[..., BakedProject],
    capfd: pytest.CaptureFixture[str],
    cache_backend: str,
    database: str,
    docker: bool,
) -> None:
    project = bake(cache_backend=cache_backend, database=database, docker=docker)
    printed = capfd.readouterr().out

    assert f"\n  cd {project.path}\n" in printed
    assert "\n  make run " in printed
    assert "\n  make test " in printed
    chosen = (database, cache_backend)
    servers = [SERVER_LINES[choice] for choice in chosen if choice in SERVER_LINES]
    if servers:
        assert f"Both need {' and '.join(servers)}\n" in printed
    else:
        assert "No server needed" in printed
    for choice, server in SERVER_LINES.items():
        assert (server in printed) == (choice in chosen)
    # migrate creates a missing database, so there is no createdb step to print.
    assert "createdb" not in printed
    creates = "The first `make run` creates the database orders_service"
    assert (creates in printed) == (database == "postgresql")
    one_process = "The in-process cache serves one process per database: run one worker"
    assert (one_process in printed) == (cache_backend == "memory")
    assert ("\n  make services " in printed) == (docker and bool(servers))
    assert ("  docker compose up --build" in printed) == docker
    assert (project.path / "docker-compose.yml").exists() == docker


def test_the_next_steps_name_the_directory_from_where_cookiecutter_ran(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(COOKIECUTTER), "--no-input", "-o", "services", str(TEMPLATE_ROOT)],
        cwd=tmp_path,
        # What a shell sets: the hook runs inside the new project, but $PWD is where the user is.
        env={**os.environ, "PWD": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )

    lines = completed.stdout.splitlines()
    assert lines[0] == "Created services/orders_service. Next steps:"
    assert "  cd services/orders_service" in lines
    assert (tmp_path / "services" / "orders_service" / "Makefile").is_file()
