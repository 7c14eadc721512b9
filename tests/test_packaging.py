"""A bake installs with any PEP 517 front end, not only uv: here plain pip in a fresh venv."""

import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.baking import BakedProject, clean_environment


@pytest.mark.slow
def test_a_bake_installs_with_pip_then_migrates_and_imports_its_app(
    bake: Callable[..., BakedProject], tmp_path: Path
) -> None:
    project = bake(cache_backend="memory")
    venv = tmp_path / "venv"
    subprocess.run([project.python, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # Outside the project directory: only the installed package can be imported.
    env = clean_environment() | {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
    }

    def run(*args: str) -> str:
        result = subprocess.run(
            [python, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        return result.stdout

    # pip builds the wheel with the declared build backend, in an isolated environment.
    run("-m", "pip", "install", "--quiet", str(project.path))
    run("-m", "orders_service", "migrate")
    shown = run("-c", "import orders_service.main as main; print(main.__file__, main.app.title)")

    location, title = shown.strip().split(" ", 1)
    assert Path(location).is_relative_to(venv)
    assert title == "Orders Service"
