"""Helpers to install, lint and test a baked project in a virtualenv of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

TEMPLATE_ROOT = Path(__file__).resolve().parent.parent
# uv sits beside the interpreter running these tests (the template's dev environment).
UV = str(Path(sys.executable).with_name("uv"))
RESIDUE = re.compile(r"\{\{\s*cookiecutter|\{%-?\s|cookiecutter\.")
# A test run's own limit: a wedged baked test suite fails its template test instead of CI.
COMMAND_TIMEOUT_SECONDS = 600


def find_python(version: str) -> str:
    """The interpreter for `version`: `pythonX.Y` on PATH if it runs, else pyenv's copy.

    pyenv's shims sit on PATH for every installed version but only run the globally selected
    ones, so a shim that answers "command not found" falls back to pyenv's versions directory.
    """
    on_path = shutil.which(f"python{version}")
    if on_path and subprocess.run([on_path, "-c", ""], capture_output=True).returncode == 0:
        return on_path
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}")):
        return str(candidate)
    raise LookupError(f"no Python {version} found on PATH or in {pyenv_root}/versions")


# Left by a make that runs these tests (as `make test` does): a baked project's own make would
# then print "Entering directory" lines and inherit flags a user's shell does not have.
INHERITED = {"VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}


def clean_environment() -> dict[str, str]:
    """The environment a user's shell would give a baked project: not this run's venv or make."""
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env["UV_PYTHON_DOWNLOADS"] = "never"  # only interpreters already on the machine
    return env


@dataclass(frozen=True)
class CommandResult:
    args: list[str]
    returncode: int
    output: str

    def explain(self) -> str:
        return f"$ {' '.join(self.args)}\n(exit {self.returncode})\n{self.output[-6000:]}"


@dataclass(frozen=True)
class SuiteCounts:
    tests: int
    failures: int
    errors: int
    skipped: int

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


class BakedProject:
    def __init__(self, path: Path, python_version: str) -> None:
        self.path = path
        self.python = find_python(python_version)

    def run(self, *args: str, env: dict[str, str] | None = None) -> CommandResult:
        completed = subprocess.run(
            list(args),
            cwd=self.path,
            env=env or clean_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        return CommandResult(list(args), completed.returncode, completed.stdout)

    def cli(self, package: str, env: dict[str, str], *args: str) -> str:
        """`python -m <package> ARGS` in the project's environment, asserted to succeed; its
        stdout (the project logs to stderr)."""
        result = subprocess.run(
            [str(self.path / ".venv" / "bin" / "python"), "-m", package, *args],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def serve(
        self,
        package: str,
        env: dict[str, str],
        log: Path,
        *,
        workers: int = 1,
        options: Sequence[str] = (),
    ) -> tuple[subprocess.Popen[bytes], int]:
        """uvicorn serving the app factory on a free loopback port, its output appended to
        `log`: the process and its port, not yet answering."""
        port = free_port()
        uvicorn = str(self.path / ".venv" / "bin" / "uvicorn")
        command = [uvicorn, "--factory", f"{package}.main:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers), *options]
        with log.open("ab") as output:
            process = subprocess.Popen(
                command, cwd=self.path, env=env, stdout=output, stderr=output
            )
        return process, port

    def run_ok(self, *args: str) -> CommandResult:
        result = self.run(*args)
        assert result.returncode == 0, result.explain()
        return result

    def template_residue(self) -> list[str]:
        """Files that still hold Jinja after the bake."""
        return [
            str(path.relative_to(self.path))
            for path in sorted(self.path.rglob("*"))
            if path.is_file() and RESIDUE.search(path.read_text(encoding="utf-8", errors="replace"))
        ]

    def install(self) -> None:
        # Bytecode compiled up front, as the baked Makefile does: imports stay fast even where
        # PYTHONDONTWRITEBYTECODE is set (it is on this project's machines).
        self.run_ok(UV, "sync", "--quiet", "--compile-bytecode", "--python", self.python)

    def tool(self, *args: str) -> CommandResult:
        """Run a command inside the project's virtualenv."""
        return self.run(UV, "run", "--no-sync", *args)

    def lint(self, *, types: bool = True) -> None:
        """ruff check, ruff format --check and (unless types=False) mypy --strict must pass."""
        checks = [("ruff", "check", "."), ("ruff", "format", "--check", ".")]
        if types:
            checks.append(("mypy", "src", "tests", "scripts"))
        for check in checks:
            result = self.tool(*check)
            assert result.returncode == 0, result.explain()

    def run_tests(self) -> SuiteCounts:
        report = self.path / "test-report.xml"
        result = self.tool("pytest", "-p", "no:cacheprovider", f"--junitxml={report}")
        assert result.returncode == 0, result.explain()
        suite = ElementTree.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        return SuiteCounts(
            tests=int(suite.get("tests", 0)),
            failures=int(suite.get("failures", 0)),
            errors=int(suite.get("errors", 0)),
            skipped=int(suite.get("skipped", 0)),
        )
