"""The baked repository's developer tooling works on day one."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.baking import UV, BakedProject, clean_environment


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
