"""A newcomer's first commands in a baked project: what they do, and what they say when a server
is missing."""

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.baking import UV, BakedProject, clean_environment
from tests.conftest import SERVICES
from tests.servers import free_port
from tests.test_toggles import BACKEND_PAIRS, SERVICE_NAMES, expected_services, load_yaml

# Published where the settings' and tests' defaults look (DynamoDB Local's image listens on
# 8000, the app's own port), and to this machine only.
PUBLISHED_PORTS = {
    "postgres": "127.0.0.1:5432:5432",
    "redis": "127.0.0.1:6379:6379",
    "memcached": "127.0.0.1:11211:11211",
    "dynamodb": "127.0.0.1:8100:8000",
}
DEBIAN_PACKAGES = {"postgresql": "postgresql", "redis": "redis-server", "memcached": "memcached"}
SECRET = "pw-that-must-not-leak"


def psql(statement: str, database: str = "postgres") -> str:
    host, port = SERVICES["PostgreSQL"]
    command = ["psql", "-h", host, "-p", str(port), "-U", "postgres", "-d", database]
    result = subprocess.run(
        [*command, "-At", "-c", statement], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def run_in(project: BakedProject, *args: str, **variables: str) -> tuple[int, str]:
    """Run `args` in the project's environment with `variables` set; exit code and output."""
    result = project.run(UV, "run", "--no-sync", *args, env=clean_environment() | variables)
    return result.returncode, result.output


@pytest.fixture
def missing_database() -> Iterator[str]:
    """A database name the local server does not have yet; dropped afterwards."""
    name = f"first_run_{uuid.uuid4().hex[:12]}"
    yield name
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.usefixtures("services")
def test_migrate_creates_a_missing_postgresql_database_and_the_second_run_is_a_no_op(
    bake: Callable[..., BakedProject], missing_database: str
) -> None:
    project = bake(database="postgresql", cache_backend="memory")
    project.install()
    slug = project.path.name
    host, port = SERVICES["PostgreSQL"]
    url = f"postgresql+asyncpg://postgres:{SECRET}@{host}:{port}/{missing_database}"

    first = run_in(project, "python", "-m", slug, "migrate", DATABASE_URL=url)
    second = run_in(project, "python", "-m", slug, "migrate", DATABASE_URL=url)

    assert first == (
        0,
        f'Created the database "{missing_database}" on {host}:{port}.\n'
        "The database is at the latest migration.\n",
    )
    assert second == (0, "The database is at the latest migration.\n")
    tables = "SELECT count(*) FROM pg_tables WHERE tablename IN ('users', 'items')"
    assert psql(tables, database=missing_database) == "2"


# Each server of a bake, pointed at a closed port in turn: (variable, URL, name in the message).
DOWN_SERVERS = {
    "redis": ("REDIS_URL", "redis://:{secret}@127.0.0.1:{port}/0", "Redis"),
    "memcached": ("MEMCACHED_URL", "memcached://127.0.0.1:{port}", "memcached"),
    "postgresql": (
        "TEST_DATABASE_SERVER_URL",
        "postgresql+asyncpg://postgres:{secret}@127.0.0.1:{port}/postgres",
        "PostgreSQL",
    ),
}


@pytest.mark.slow
@pytest.mark.usefixtures("services")
@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({"cache_backend": "redis", "database": "postgresql"}, id="redis-postgresql"),
        pytest.param(
            {"cache_backend": "memcached", "database": "sqlite", "docker": False},
            id="memcached-sqlite-no-docker",
        ),
    ],
)
def test_the_baked_suite_stops_with_one_message_when_a_server_is_down(
    bake: Callable[..., BakedProject], answers: dict[str, object]
) -> None:
    project = bake(**answers)
    project.install()
    chosen = [answers["cache_backend"], answers["database"]]
    for server in [name for name in chosen if name in DOWN_SERVERS]:
        variable, template, name = DOWN_SERVERS[str(server)]
        port = free_port()
        url = template.format(secret=SECRET, port=port)

        # Two xdist workers, as on any multi-core machine: the check runs once, in the controller.
        code, output = run_in(
            project, "pytest", "-p", "no:cacheprovider", "-n", "2", **{variable: url}
        )

        shown = url.replace(SECRET, "***")
        assert code == pytest.ExitCode.USAGE_ERROR, output
        assert output.startswith(f"ERROR: The tests need {name}, and none answers at {shown} ")
        assert output.count("The tests need") == 1, output
        assert f"Or point {variable} at a running server." in output
        assert SECRET not in output
        assert "Traceback" not in output
        assert not re.search(r"\d+ (passed|failed|skipped|errors?)\b", output), output
        if answers.get("docker", True):
            compose_service = {"postgresql": "postgres"}.get(str(server), str(server))
            assert f"(docker compose up --detach --wait {compose_service})" in output
            compose = load_yaml(project.path / "docker-compose.yml")
            assert compose_service in compose["services"]
        else:
            assert f"sudo apt-get install {DEBIAN_PACKAGES[str(server)]}" in output


def quick_start_commands(readme: str) -> list[str]:
    """The commands of the README's quick start block, comments dropped."""
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```", 2)[1]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("docker", [True, False], ids=["docker", "no-docker"])
@pytest.mark.parametrize(("cache", "database"), BACKEND_PAIRS)
def test_the_quick_start_uses_makefile_targets_and_services_starts_the_chosen_servers(
    bake: Callable[..., BakedProject], cache: str, database: str, docker: bool
) -> None:
    project = bake(cache_backend=cache, database=database, docker=docker)
    readme = (project.path / "README.md").read_text(encoding="utf-8")
    servers = expected_services(cache, database, SERVICE_NAMES)

    commands = quick_start_commands(readme)
    starts_servers = ["make services"] if docker and servers else []
    assert commands == [*starts_servers, "make run", "make test"]
    for command in commands:
        dry_run = project.run(*command.split(), "--dry-run")
        assert dry_run.returncode == 0, dry_run.explain()

    services = project.run("make", "--dry-run", "services")
    if docker and servers:
        assert services.returncode == 0, services.explain()
        [line] = services.output.splitlines()
        assert line.startswith("docker compose up --detach --wait ")
        started = line.removeprefix("docker compose up --detach --wait ").split()
        assert sorted(started) == sorted(servers)
        compose = load_yaml(project.path / "docker-compose.yml")["services"]
        for server in started:
            assert compose[server]["ports"] == [PUBLISHED_PORTS[server]]
    else:
        assert services.returncode != 0
        assert "make services" not in readme
    if servers and not docker:
        packages = sorted(
            DEBIAN_PACKAGES[name] for name in (cache, database) if name in DEBIAN_PACKAGES
        )
        install = re.search(r"`sudo apt-get install ([^`]+)`", readme)
        assert sorted(install.group(1).split() if install else []) == packages
    if cache == "dynamodb":
        # No Debian package: the README says how to run it from npm.
        assert "npm install --ignore-scripts" in readme
        assert "-port 8100" in readme
    if database == "postgresql":
        # migrate creates the database: no manual createdb step left in the quick start.
        assert "createdb -h" not in readme.split("## Settings", 1)[0]
