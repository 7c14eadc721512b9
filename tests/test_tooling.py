"""The baked repository's developer tooling works on day one."""

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.baking import TEMPLATE_ROOT, UV, BakedProject, clean_environment

CRUFT = str(Path(UV).with_name("cruft"))


@pytest.mark.slow
def test_pre_commit_hooks_pass_on_a_fresh_repository(bake: Callable[..., BakedProject]) -> None:
    project = bake()
    project.install()
    env = clean_environment()
    # The hooks call `uv run`, so uv must be on PATH as it is for a developer.
    env["PATH"] = f"{Path(UV).parent}{os.pathsep}{env.get('PATH', '')}"
    for command in (
        ("git", "init", "--quiet"),
        ("git", "add", "--all"),
        (UV, "run", "--no-sync", "pre-commit", "install"),
    ):
        result = project.run(*command, env=env)
        assert result.returncode == 0, result.explain()

    result = project.run(UV, "run", "--no-sync", "pre-commit", "run", "--all-files", env=env)

    assert result.returncode == 0, result.explain()
    for hook in ("ruff check", "ruff format", "mypy --strict", "check yaml", "detect private key"):
        assert any(
            line.startswith(hook) and line.endswith("Passed") for line in result.output.splitlines()
        ), result.explain()


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"git {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def cruft(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRUFT, *args],
        cwd=cwd,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def template_repository(path: Path) -> Path:
    """A git repository holding this checkout's template files, as a user's fork would."""
    files = git(TEMPLATE_ROOT, "ls-files", "--cached", "--others", "--exclude-standard")
    for name in files.splitlines():
        if (TEMPLATE_ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(TEMPLATE_ROOT / name, path / name)
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "template v1")
    return path


def test_cruft_update_brings_a_template_change_into_an_edited_project(tmp_path: Path) -> None:
    template = template_repository(tmp_path / "template")
    created = cruft(tmp_path, "create", str(template), "--no-input", "--output-dir", "projects")
    assert created.returncode == 0, created.stdout + created.stderr
    [project] = (tmp_path / "projects").iterdir()
    secret_key_line = (project / ".env").read_text(encoding="utf-8")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "-m", "baked")
    # The user's own work, in a file the template change does not touch.
    settings_path = next(project.glob("src/*/settings.py"))
    settings_path.write_text(
        settings_path.read_text(encoding="utf-8") + "\n# A local change.\n", encoding="utf-8"
    )
    git(project, "commit", "--quiet", "-am", "local change")
    # The template moves on.
    makefile = template / "{{cookiecutter.project_slug}}" / "Makefile"
    makefile.write_text(
        makefile.read_text(encoding="utf-8") + "\n# From template v2.\n", encoding="utf-8"
    )
    git(template, "commit", "--quiet", "-am", "template v2")

    assert cruft(project, "check").returncode == 1  # out of date
    updated = cruft(project, "update", "--skip-apply-ask")

    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert (project / "Makefile").read_text(encoding="utf-8").endswith("# From template v2.\n")
    assert settings_path.read_text(encoding="utf-8").endswith("# A local change.\n")
    # .env holds this project's own SECRET_KEY: cruft must leave it alone (pyproject skips it).
    assert (project / ".env").read_text(encoding="utf-8") == secret_key_line
    assert not list(project.rglob("*.rej"))
    changed = {line[3:] for line in git(project, "status", "--porcelain").splitlines()}
    assert changed == {".cruft.json", "Makefile"}
    assert cruft(project, "check").returncode == 0
