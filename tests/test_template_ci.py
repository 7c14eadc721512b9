"""The template repository's own CI, and the auditors the baked files are held to.

The workflow cannot run here (no GitHub runner), so these tests check what can be checked
offline: its schema, zizmor, and that it runs the same command and servers as .ci/run.
"""

import json
from pathlib import Path
from typing import Any

import yaml

from tests.auditors import hadolint_findings, schema_errors, zizmor_findings
from tests.baking import TEMPLATE_ROOT
from tests.conftest import SERVICES

WORKFLOW = TEMPLATE_ROOT / ".github" / "workflows" / "ci.yml"
CHOICES = json.loads((TEMPLATE_ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
SERVER_IMAGES = {
    "Redis": "redis",
    "PostgreSQL": "postgres",
    "memcached": "memcached",
    "DynamoDB Local": "amazon/dynamodb-local",
}
# DynamoDB Local's image listens on 8000, the baked app's own port: published elsewhere.
CONTAINER_PORTS = {"DynamoDB Local": 8000}


def the_job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    assert isinstance(job, dict)
    return job


def test_the_template_workflow_is_valid_and_zizmor_clean() -> None:
    assert schema_errors(WORKFLOW, "github-workflows") is None
    assert zizmor_findings(TEMPLATE_ROOT, ".github/workflows/ci.yml") == []


def test_the_template_workflow_runs_what_ci_runs() -> None:
    ci_run = (TEMPLATE_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec make test" in ci_run
    job = the_job()
    assert job["steps"][-1] == {"run": "make test"}
    # Every Python a bake can choose is installed, so the matrix bakes find their interpreter.
    (setup_python,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-p")]
    assert set(setup_python["with"]["python-version"].split()) == set(CHOICES["python_version"])


def test_the_template_workflow_serves_each_server_the_tests_need() -> None:
    services = the_job()["services"]
    for name, (_, port) in SERVICES.items():
        service = services[SERVER_IMAGES[name].rpartition("/")[2]]
        assert service["image"].startswith(f"{SERVER_IMAGES[name]}:"), name
        assert service["ports"] == [f"{port}:{CONTAINER_PORTS.get(name, port)}"], name
        assert "--health-cmd" in service["options"], name
    env = the_job()["env"]
    assert env["REDIS_URL"].startswith(f"redis://127.0.0.1:{SERVICES['Redis'][1]}/")
    assert env["MEMCACHED_URL"] == f"memcached://127.0.0.1:{SERVICES['memcached'][1]}"
    assert env["DYNAMODB_ENDPOINT_URL"] == f"http://127.0.0.1:{SERVICES['DynamoDB Local'][1]}"
    assert f"@127.0.0.1:{SERVICES['PostgreSQL'][1]}/" in env["TEST_DATABASE_SERVER_URL"]


def test_renovate_config_is_valid_and_plain_json() -> None:
    """GitLab bakes get it as it is: no Jinja, so Renovate's own tooling can edit it."""
    path = TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / "renovate.json"
    assert "cookiecutter" not in path.read_text(encoding="utf-8")
    assert schema_errors(path, "renovate") is None


def test_the_auditors_report_what_they_find(tmp_path: Path) -> None:
    """Known-bad files: a broken wrapper (wrong flags, wrong binary) would pass everything."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n",
        encoding="utf-8",
    )
    found = zizmor_findings(tmp_path, ".github/workflows/ci.yml")
    assert {line.split()[0] for line in found} == {
        "artipacked",
        "excessive-permissions",
        "unpinned-uses",
    }
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.12-slim\nRUN echo $HOME\nUSER app\n", encoding="utf-8")
    found = hadolint_findings(dockerfile)
    assert {line.split()[0] for line in found} == {"SC2086", "DL3066"}
    assert schema_errors(workflows / "ci.yml", "dependabot") is not None
