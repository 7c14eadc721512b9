"""The other toggles bake, lint clean, and produce files that parse and match the choices."""

import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.baking import BakedProject

RUFF = str(Path(sys.executable).with_name("ruff"))

SERVICE_IMAGES = {"redis": "redis", "memcached": "memcached", "postgresql": "postgres"}

BACKEND_PAIRS = [
    pytest.param(cache, database, id=f"{cache}-{database}")
    for cache in ("redis", "memcached", "memory")
    for database in ("sqlite", "postgresql")
]


def ruff_clean(project: BakedProject) -> None:
    """The template's pinned ruff (the baked project pins the same) with the project's config."""
    for check in (("check", "."), ("format", "--check", ".")):
        result = project.run(RUFF, *check)
        assert result.returncode == 0, result.explain()


def expected_services(cache: str, database: str) -> set[str]:
    chosen = {cache, database} & SERVICE_IMAGES.keys()
    return {SERVICE_IMAGES[name] for name in chosen}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_github_workflow_runs_lint_and_tests_with_the_chosen_services(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(ci="github", cache_backend=cache, database=database)
    workflow = load_yaml(project.path / ".github" / "workflows" / "ci.yml")
    assert not (project.path / ".gitlab-ci.yml").exists()

    assert set(workflow["jobs"]) == {"lint", "test"}
    services = workflow["jobs"]["test"].get("services", {})
    assert {spec["image"].split(":")[0] for spec in services.values()} == expected_services(
        cache, database
    )
    ruff_clean(project)


@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_gitlab_pipeline_runs_lint_and_tests_with_the_chosen_services(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(ci="gitlab", cache_backend=cache, database=database)
    pipeline = load_yaml(project.path / ".gitlab-ci.yml")
    assert not (project.path / ".github").exists()

    assert {"lint", "test"} <= set(pipeline)
    services = pipeline["test"].get("services", [])
    assert {spec["name"].split(":")[0] for spec in services} == expected_services(cache, database)
    ruff_clean(project)


def test_no_ci_files_when_ci_is_none(bake: Callable[..., BakedProject]) -> None:
    project = bake(ci="none")
    assert not (project.path / ".github").exists()
    assert not (project.path / ".gitlab-ci.yml").exists()
    ruff_clean(project)


@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_docker_files_match_the_chosen_services(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(docker=True, cache_backend=cache, database=database)
    compose = load_yaml(project.path / "docker-compose.yml")
    dockerfile = (project.path / "Dockerfile").read_text(encoding="utf-8")

    services = compose["services"]
    dependencies = expected_services(cache, database)
    assert set(services) == {"app"} | dependencies
    assert set(services["app"].get("depends_on", {})) == dependencies
    for name in dependencies:
        assert services["app"]["depends_on"][name]["condition"] in {
            "service_healthy",
            "service_started",
        }
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2  # multi-stage
    assert "\nUSER app\n" in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert "/health/live" in dockerfile
    assert ".env" in (project.path / ".dockerignore").read_text(encoding="utf-8").split()


def test_no_docker_files_without_docker(bake: Callable[..., BakedProject]) -> None:
    project = bake(docker=False)
    for name in ("Dockerfile", ".dockerignore", "docker-compose.yml"):
        assert not (project.path / name).exists()
    ruff_clean(project)


@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_pyproject_targets_the_chosen_python(
    bake: Callable[..., BakedProject], python_version: str
) -> None:
    project = bake(python_version=python_version)
    pyproject = tomllib.loads((project.path / "pyproject.toml").read_text(encoding="utf-8"))

    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["tool"]["mypy"]["python_version"] == python_version
    assert pyproject["tool"]["ruff"]["target-version"] == f"py{python_version.replace('.', '')}"
    assert (project.path / ".python-version").read_text(encoding="utf-8").strip() == python_version


@pytest.mark.parametrize("cache", ["redis", "memcached", "memory"])
def test_pinned_dependencies_match_the_chosen_backends(
    bake: Callable[..., BakedProject], cache: str
) -> None:
    project = bake(cache_backend=cache, database="postgresql")
    pyproject = tomllib.loads((project.path / "pyproject.toml").read_text(encoding="utf-8"))
    dependencies = pyproject["project"]["dependencies"]

    assert all("==" in requirement for requirement in dependencies)
    names = {requirement.split("==")[0].split("[")[0] for requirement in dependencies}
    assert "asyncpg" in names
    assert "aiosqlite" not in names
    assert ("redis" in names) == (cache == "redis")
    assert ("aiomcache" in names) == (cache == "memcached")
    # fastapi-cache2's [redis] extra pins redis<5 and drags in an old release: never use it.
    assert "fastapi-cache2==0.2.2" in dependencies


@pytest.mark.parametrize("cache", ["redis", "memcached", "memory"])
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_longest_allowed_names_still_lint_clean(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(
        project_name="N" * 60,
        project_slug="s" * 32,
        description="D" * 200,
        cache_backend=cache,
        database=database,
    )
    assert project.template_residue() == []
    ruff_clean(project)
