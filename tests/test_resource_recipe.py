"""The baked README's "Adding a resource", followed to the letter on a fresh bake.

Every code block and command is taken from the rendered README, so the recipe and this test
cannot drift apart: the project must then lint clean (ruff, ruff format, mypy --strict) and pass
its whole suite, the new resource's cached reads, invalidating writes and the migration drift
check included.
"""

import os
import re
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.baking import UV, BakedProject, clean_environment
from tests.conftest import SERVICES
from tests.test_first_run import psql

SECTION = "## Adding a resource"
STEP = re.compile(
    r"^\d+\. (?P<action>Append to|Create|Change|Run)\b(?:[^`\n]*`(?P<path>[^`]+)`)?"
    r".*?^```(?P<language>\w+)\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
# What following the recipe may change: anything else it touches is a file the README forgot.
UNTOUCHED = {".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}


@dataclass(frozen=True)
class Step:
    action: str
    path: str | None
    language: str
    code: str


def recipe_steps(readme: str) -> list[Step]:
    start = readme.index(f"\n{SECTION}\n")
    end = readme.find("\n## ", start + 1)
    section = readme[start : end if end != -1 else None]
    return [Step(m["action"], m["path"], m["language"], m["code"]) for m in STEP.finditer(section)]


def apply_diff(text: str, diff: str) -> str:
    """Apply hunks of context (` `) and added (`+`) lines; each hunk's context must match once."""
    for hunk in re.split(r"^@@.*@@\n", diff, flags=re.MULTILINE):
        if not hunk.strip():
            continue
        lines = hunk.splitlines()
        assert all(line[:1] in {" ", "+"} for line in lines), hunk
        before = "\n".join(line[1:] for line in lines if line.startswith(" ")) + "\n"
        after = "\n".join(line[1:] for line in lines) + "\n"
        assert text.count(before) == 1, f"the recipe's context is not in the file once:\n{before}"
        text = text.replace(before, after)
    return text


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
        and not UNTOUCHED.intersection(path.relative_to(root).parts)
        and path.suffix not in {".db", ".xml"}
    }


@pytest.fixture
def postgresql_database() -> Iterator[str]:
    """A database name for a PostgreSQL bake (`make migrate` creates it); dropped afterwards."""
    name = f"recipe_{uuid.uuid4().hex[:12]}"
    yield name
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Run inside the baked project: a user created before the resource existed reads its list.
EARLIER_USER_READS_ORDERS = """
import asyncio
import sys

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from {slug}.main import create_app


async def main() -> None:
    app = create_app()
    headers = {{"Authorization": f"Bearer {{sys.argv[1]}}"}}
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/api/orders", headers=headers)
    print(response.status_code, response.text)


asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.usefixtures("services")
@pytest.mark.parametrize(
    ("cache_backend", "database"),
    [("redis", "sqlite"), ("memcached", "postgresql")],
    ids=["redis-sqlite", "memcached-postgresql"],
)
def test_adding_orders_as_the_readme_says_lints_clean_and_passes_every_test(
    bake: Callable[..., BakedProject],
    cache_backend: str,
    database: str,
    postgresql_database: str,
    tmp_path: Path,
) -> None:
    project = bake(cache_backend=cache_backend, database=database)
    slug = project.path.name
    project.install()
    report = tmp_path / "report.xml"
    env = clean_environment() | {
        # The recipe's `uv` and `make` find the same uv as the rest of these tests.
        "PATH": f"{Path(UV).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTEST_ADDOPTS": f"-p no:cacheprovider --junitxml={report}",
    }
    if database == "postgresql":
        host, port = SERVICES["PostgreSQL"]
        env["DATABASE_URL"] = f"postgresql+asyncpg://postgres@{host}:{port}/{postgresql_database}"

    def shell(command: str) -> str:
        result = project.run("bash", "-c", command, env=env)
        assert result.returncode == 0, result.explain()
        return result.output

    # A user created before orders exist, with the default scopes.
    shell("make migrate")
    earlier_token = shell(f"uv run python -m {slug} create-user earlier").splitlines()[-1]
    before = snapshot(project.path)

    steps = recipe_steps((project.path / "README.md").read_text(encoding="utf-8"))
    actions = [step.action for step in steps]
    assert actions == ["Append to", "Create", "Change", "Run", "Create", "Run"]
    for step in steps:
        if step.action == "Run":
            for command in step.code.splitlines():
                shell(command)
            continue
        assert step.path is not None
        target = project.path / step.path
        if step.action == "Create":
            assert not target.exists(), step.path
            target.write_text(step.code, encoding="utf-8")
        elif step.action == "Append to":
            target.write_text(target.read_text(encoding="utf-8") + "\n\n" + step.code)
        else:
            target.write_text(apply_diff(target.read_text(encoding="utf-8"), step.code))

    after = snapshot(project.path)
    changed = {path for path in before.keys() & after.keys() if before[path] != after[path]}
    package = f"src/{slug}"
    assert changed == {f"{package}/db/models.py", f"{package}/main.py"}
    assert after.keys() - before.keys() == {
        f"{package}/api/orders.py",
        f"{package}/db/migrations/versions/0004_orders.py",
        "tests/api/test_orders.py",
    }
    migration = after[f"{package}/db/migrations/versions/0004_orders.py"].decode()
    assert 'op.create_table(\n        "orders",' in migration

    # The recipe's last step ran `make lint` and `make test`; every test ran and passed.
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    assert [suite.get(kind) for kind in ("failures", "errors", "skipped")] == ["0", "0", "0"]
    ran = {case.get("classname") for case in suite.iter("testcase")}
    assert {"tests.api.test_orders", "tests.db.test_migrations"} <= ran

    # No migration granted anything: the earlier user's `*` covers the new resource.
    shell("make migrate")
    script = tmp_path / "earlier_user_reads_orders.py"
    script.write_text(EARLIER_USER_READS_ORDERS.format(slug=slug), encoding="utf-8")
    assert shell(f"uv run python {script} {earlier_token}").splitlines()[-1] == "200 []"
