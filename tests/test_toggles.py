"""The other toggles bake, lint clean, and produce files that parse and match the choices."""

import json
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.auditors import hadolint_findings, schema_errors, zizmor_findings
from tests.baking import BakedProject

RUFF = str(Path(sys.executable).with_name("ruff"))
SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]

SERVICE_IMAGES = {
    "redis": "redis",
    "memcached": "memcached",
    "postgresql": "postgres",
    "dynamodb": "amazon/dynamodb-local",
}
# docker-compose.yml's names for them.
SERVICE_NAMES = {
    "redis": "redis",
    "memcached": "memcached",
    "postgresql": "postgres",
    "dynamodb": "dynamodb",
}
CACHE_BACKENDS = ["redis", "memcached", "memory", "dynamodb"]
# docker-compose.yml's `monitoring` profile.
MONITORING_SERVICES = {"prometheus", "grafana"}

BACKEND_PAIRS = [
    pytest.param(cache, database, id=f"{cache}-{database}")
    for cache in CACHE_BACKENDS
    for database in ("sqlite", "postgresql")
]


def ruff_clean(project: BakedProject) -> None:
    """The template's pinned ruff (the baked project pins the same) with the project's config."""
    for check in (("check", "."), ("format", "--check", ".")):
        result = project.run(RUFF, *check)
        assert result.returncode == 0, result.explain()


def expected_services(
    cache: str, database: str, names: dict[str, str] = SERVICE_IMAGES
) -> set[str]:
    """The servers a bake needs: by image name, or by another naming such as SERVICE_NAMES."""
    chosen = {cache, database} & names.keys()
    return {names[name] for name in chosen}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def assert_valid(path: Path, schema: str) -> None:
    """Validate against the schema check-jsonschema ships with (no network needed)."""
    assert schema_errors(path, schema) is None


def dependabot_ecosystems(project: BakedProject) -> dict[str, dict[str, Any]]:
    """Dependabot's update entries by ecosystem, after checking the file's schema and zizmor."""
    path = project.path / ".github" / "dependabot.yml"
    assert_valid(path, "dependabot")
    updates: list[dict[str, Any]] = load_yaml(path)["updates"]
    for update in updates:
        assert update["schedule"]["interval"] == "weekly", update
        # One pull request per ecosystem: a group that takes every dependency.
        assert [group["patterns"] for group in update["groups"].values()] == [["*"]], update
    return {update["package-ecosystem"]: update for update in updates}


def pythons_from(minimum: str) -> list[str]:
    return SUPPORTED_PYTHONS[SUPPORTED_PYTHONS.index(minimum) :]


@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_github_workflow_runs_lint_and_tests_with_the_chosen_services(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(ci="github", cache_backend=cache, database=database, python_version="3.11")
    path = project.path / ".github" / "workflows" / "ci.yml"
    workflow = load_yaml(path)
    assert not (project.path / ".gitlab-ci.yml").exists()

    assert_valid(path, "github-workflows")
    assert zizmor_findings(project.path, ".github/workflows/ci.yml", ".github/dependabot.yml") == []
    ecosystems = dependabot_ecosystems(project)
    assert set(ecosystems) == {"github-actions", "uv", "docker"}
    # The images' Python minor version is the project's choice: never proposed for an image.
    (ignored,) = ecosystems["docker"]["ignore"]
    assert "version-update:semver-minor" in ignored["update-types"]
    assert set(workflow["jobs"]) == {"lint", "test"}
    lint_steps = [step.get("run", "") for step in workflow["jobs"]["lint"]["steps"]]
    assert any("pre-commit run --all-files" in step for step in lint_steps)
    test_job = workflow["jobs"]["test"]
    assert test_job["strategy"]["matrix"]["python-version"] == SUPPORTED_PYTHONS
    assert any("pytest" in step.get("run", "") for step in test_job["steps"])
    services = test_job.get("services", {})
    assert {spec["image"].split(":")[0] for spec in services.values()} == expected_services(
        cache, database
    )
    assert all("--health-cmd" in spec["options"] for spec in services.values())
    ruff_clean(project)


@pytest.mark.parametrize("python_version", ["3.12", "3.13"])
def test_ci_matrices_start_at_the_chosen_python(
    bake: Callable[..., BakedProject], python_version: str
) -> None:
    github = bake(ci="github", python_version=python_version)
    gitlab = bake(ci="gitlab", python_version=python_version)
    workflow = load_yaml(github.path / ".github" / "workflows" / "ci.yml")
    pipeline = load_yaml(gitlab.path / ".gitlab-ci.yml")

    expected = pythons_from(python_version)
    assert workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"] == expected
    assert pipeline["test"]["parallel"]["matrix"] == [{"PYTHON_VERSION": expected}]


@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_gitlab_pipeline_runs_lint_and_tests_with_the_chosen_services(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(ci="gitlab", cache_backend=cache, database=database, python_version="3.11")
    path = project.path / ".gitlab-ci.yml"
    pipeline = load_yaml(path)
    assert not (project.path / ".github").exists()

    assert_valid(path, "gitlab-ci")
    # GitLab has no Dependabot: Renovate's configuration (plain JSON, validated by
    # tests/test_template_ci.py) stands in for it.
    assert (project.path / "renovate.json").is_file()
    assert {"lint", "test"} <= set(pipeline)
    assert pipeline["test"]["parallel"]["matrix"] == [{"PYTHON_VERSION": SUPPORTED_PYTHONS}]
    assert "${PYTHON_VERSION}" in pipeline["test"]["image"]
    assert pipeline["test"]["script"] == ["uv run --no-sync pytest"]
    services = pipeline["test"].get("services", [])
    assert {spec["name"].split(":")[0] for spec in services} == expected_services(cache, database)
    ruff_clean(project)


def test_no_ci_files_when_ci_is_none(bake: Callable[..., BakedProject]) -> None:
    project = bake(ci="none")
    assert not (project.path / ".github").exists()
    assert not (project.path / ".gitlab-ci.yml").exists()
    assert not (project.path / "renovate.json").exists()
    ruff_clean(project)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical = re.sub(r"\\\n\s*", " ", text)
    instructions = []
    for line in logical.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerignored(project: BakedProject) -> set[str]:
    lines = (project.path / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_compose_runs_the_migration_then_the_app_with_healthy_services(
    bake: Callable[..., BakedProject], cache: str, database: str
) -> None:
    project = bake(docker=True, cache_backend=cache, database=database)
    path = project.path / "docker-compose.yml"
    assert_valid(path, "compose-spec")
    # The Dockerfile differs by database (the SQLite volume's directory): audit each bake.
    assert hadolint_findings(project.path / "Dockerfile") == []
    services = load_yaml(path)["services"]

    servers = expected_services(cache, database, SERVICE_NAMES)
    assert set(services) == {"app", "migrate"} | servers | MONITORING_SERVICES
    slug = project.path.name
    assert services["migrate"]["command"] == ["python", "-m", slug, "migrate"]
    assert services["migrate"]["image"] == services["app"]["image"]
    app_needs = services["app"]["depends_on"]
    assert app_needs.pop("migrate") == {"condition": "service_completed_successfully"}
    assert app_needs == {name: {"condition": "service_healthy"} for name in servers}
    for name in servers:
        assert services[name]["healthcheck"]["test"], name
    # migrate creates the database (PostgreSQL) and the cache table (DynamoDB).
    migrate_needs = servers & {"postgres", "dynamodb"}
    healthy = {name: {"condition": "service_healthy"} for name in migrate_needs}
    assert services["migrate"].get("depends_on", {}) == healthy
    if database == "sqlite":
        assert services["migrate"]["volumes"] == services["app"]["volumes"] == ["app-data:/data"]


@pytest.mark.parametrize("python_version", ["3.11", "3.13"])
def test_the_dockerfile_builds_in_stages_and_runs_unprivileged(
    bake: Callable[..., BakedProject], python_version: str
) -> None:
    project = bake(docker=True, python_version=python_version)
    assert hadolint_findings(project.path / "Dockerfile") == []
    instructions = dockerfile_instructions(
        (project.path / "Dockerfile").read_text(encoding="utf-8")
    )
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) == 2
    build, runtime = instructions[stages[0] : stages[1]], instructions[stages[1] :]
    assert f"python{python_version}-" in build[0][1]
    assert runtime[0][1].startswith(f"python:{python_version}-slim")

    # Every file the build copies exists in the context and is not excluded from it.
    ignored = dockerignored(project)
    for keyword, arguments in build:
        if keyword == "COPY":
            *sources, _ = arguments.split()
            for source in sources:
                matches = list(project.path.glob(source))
                assert matches or source.endswith("*"), source
                assert source.rstrip("*") not in ignored, source
    assert {".env", ".git", ".venv", "tests"} <= ignored
    assert any(k == "RUN" and "uv sync --no-dev --no-install-project" in a for k, a in build)

    # The runtime stage: only the built environment, an unprivileged user, exec-form commands.
    # The user is numeric (a runtime enforcing non-root checks the number) and is the one created.
    keywords = [keyword for keyword, _ in runtime]
    user = dict(runtime)["USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert uid != "0"
    creates_user = dict(runtime)["RUN"]
    assert f"groupadd --gid {gid} app" in creates_user
    assert f"useradd --create-home --uid {uid} --gid app app" in creates_user
    assert ("COPY", f"--from=build --chown={user} /app/.venv /app/.venv") in runtime
    assert keywords.index("USER") < keywords.index("CMD")
    healthcheck = dict(runtime)["HEALTHCHECK"]
    probe = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert "http://127.0.0.1:8000/health/live" in probe[-1]
    command = json.loads(dict(runtime)["CMD"])
    assert command[:3] == ["uvicorn", "--factory", f"{project.path.name}.main:create_app"]


def mounted(service: dict[str, Any], target: str) -> str:
    """The host path `service` mounts at `target` (short volume syntax)."""
    (source,) = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target]
    return str(source)


def test_compose_monitoring_scrapes_the_app_with_its_token(
    bake: Callable[..., BakedProject],
) -> None:
    """`--profile monitoring`: Prometheus reads /metrics with METRICS_TOKEN, Grafana shows it."""
    project = bake(docker=True)
    compose = load_yaml(project.path / "docker-compose.yml")
    services = compose["services"]
    for name in MONITORING_SERVICES:
        assert services[name]["profiles"] == ["monitoring"], name
        # Published on this machine only: Grafana opens without a login.
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert not source.startswith(".") or (project.path / source).is_file(), volume

    # Prometheus sends the token the app reads: both come from METRICS_TOKEN.
    prometheus = services["prometheus"]
    assert compose["secrets"] == {"metrics_token": {"environment": "METRICS_TOKEN"}}
    assert prometheus["secrets"] == ["metrics_token"]
    config = load_yaml(project.path / mounted(prometheus, "/etc/prometheus/prometheus.yml"))
    (job,) = config["scrape_configs"]
    assert job["job_name"] == project.path.name
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/metrics_token",
    }
    app_port = services["app"]["ports"][0].split(":")[-1]
    assert job["static_configs"] == [{"targets": [f"app:{app_port}"]}]
    assert ".env" in [entry["path"] for entry in services["app"]["env_file"]]
    example = (project.path / ".env.example").read_text(encoding="utf-8")
    assert "# METRICS_TOKEN=" in example.splitlines()

    # Grafana: the compose Prometheus as its data source, and the dashboard provisioned.
    grafana = services["grafana"]
    provisioning = "/etc/grafana/provisioning"
    sources = load_yaml(
        project.path / mounted(grafana, f"{provisioning}/datasources/prometheus.yml")
    )
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "9090" in prometheus["ports"][0]
    providers = load_yaml(project.path / mounted(grafana, f"{provisioning}/dashboards/service.yml"))
    (provider,) = providers["providers"]
    dashboards = provider["options"]["path"]
    dashboard = mounted(grafana, f"{dashboards}/service.json")
    assert dashboard == "./monitoring/dashboard.json"
    assert json.loads((project.path / dashboard).read_text(encoding="utf-8"))["panels"]


def test_no_docker_files_without_docker(bake: Callable[..., BakedProject]) -> None:
    project = bake(docker=False)
    for name in ("Dockerfile", ".dockerignore", "docker-compose.yml"):
        assert not (project.path / name).exists()
    # The dashboard serves any Grafana; the compose monitoring files go with compose.
    assert [path.name for path in (project.path / "monitoring").iterdir()] == ["dashboard.json"]
    # Without a Dockerfile, Dependabot would fail on the docker ecosystem every week.
    assert set(dependabot_ecosystems(project)) == {"github-actions", "uv"}
    assert zizmor_findings(project.path, ".github/dependabot.yml") == []
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


@pytest.mark.parametrize("cache", CACHE_BACKENDS)
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
    assert ("aiobotocore" in names) == (cache == "dynamodb")
    # fastapi-cache2's [redis] extra pins redis<5 and drags in an old release, and its
    # [dynamodb] extra pins aiobotocore<3: never use them.
    assert "fastapi-cache2==0.2.2" in dependencies


@pytest.mark.parametrize("cache", CACHE_BACKENDS)
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
