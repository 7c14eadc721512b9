"""Invalid answers fail the bake with a message that says what to type instead, leaving nothing."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.baking import TEMPLATE_ROOT

# A file the shell-metacharacter slug would create if anything ran it as a command.
MARKER = Path(tempfile.gettempdir()) / "template-test-shell-injection-marker"

INVALID_ANSWERS = [
    pytest.param({"project_slug": "Orders-Service"}, "project_slug", id="slug-not-identifier"),
    pytest.param({"project_slug": "1orders"}, "starting with a letter", id="slug-leading-digit"),
    pytest.param({"project_slug": "class"}, "Python keyword", id="slug-keyword"),
    pytest.param({"project_slug": "logging"}, "standard library", id="slug-shadows-stdlib"),
    pytest.param({"project_slug": "test"}, "standard library", id="slug-shadows-test"),
    pytest.param({"project_slug": "fastapi"}, "depends on", id="slug-shadows-fastapi"),
    pytest.param({"project_slug": "redis"}, "depends on", id="slug-shadows-redis"),
    pytest.param({"project_slug": "tests"}, "directory name", id="slug-reserved"),
    pytest.param({"project_slug": "../escaped"}, "project_slug", id="slug-path-traversal"),
    pytest.param({"project_slug": "nested/dir"}, "project_slug", id="slug-with-slash"),
    pytest.param(
        {"project_slug": f"$(touch {MARKER})"}, "project_slug", id="slug-shell-metacharacters"
    ),
    pytest.param({"project_slug": "café"}, "ASCII", id="slug-unicode"),
    pytest.param({"project_slug": "a" * 33}, "longer than 32", id="slug-too-long"),
    pytest.param({"project_name": "", "project_slug": ""}, "project_name", id="name-empty"),
    pytest.param({"project_name": "   "}, "project_name must not be empty", id="name-blank"),
    pytest.param({"project_name": "tab\there"}, "one line", id="name-with-tab"),
    pytest.param(
        {"project_name": "\\" * 31}, "counting each of those twice", id="name-too-long-escaped"
    ),
    pytest.param({"description": "two\nlines"}, "one line", id="description-newline"),
    pytest.param({"author_email": "jane.example.com"}, "author_email", id="email-no-at"),
    pytest.param({"author_email": "jane@localhost"}, "author_email", id="email-no-domain"),
    pytest.param({"author_name": "nul\x00byte"}, "control characters", id="author-nul"),
]


def leftovers(root: Path) -> list[str]:
    """Everything under `root` except empty directories."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() or any(path.iterdir())
    )


@pytest.mark.parametrize(("answers", "message"), INVALID_ANSWERS)
def test_invalid_answer_fails_the_bake_and_leaves_nothing(
    cookies: Any, tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    result = cookies.bake(template=str(TEMPLATE_ROOT), extra_context=answers)

    assert result.exception is not None
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert "nothing was generated" in str(result.exception)
    assert leftovers(tmp_path) == []
    assert not MARKER.exists()


def test_every_problem_is_reported_at_once(cookies: Any) -> None:
    result = cookies.bake(
        template=str(TEMPLATE_ROOT),
        extra_context={"project_slug": "import", "author_email": "nobody"},
    )
    assert "project_slug" in str(result.exception)
    assert "author_email" in str(result.exception)


def test_the_cli_prints_a_clear_error_without_a_traceback(tmp_path: Path) -> None:
    output = tmp_path / "out"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(output),
            str(TEMPLATE_ROOT),
            "project_slug=../escaped",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    printed = completed.stdout + completed.stderr

    assert completed.returncode == 1
    assert "Error: The template answers need fixing; nothing was generated" in printed
    assert "project_slug '../escaped' is not a valid package name" in printed
    assert "Traceback" not in printed
    assert not (tmp_path / "escaped").exists()
    assert leftovers(tmp_path) == []


def test_the_pre_gen_hook_rejects_answers_that_skipped_rendering(tmp_path: Path) -> None:
    """`--replay` reuses stored answers without rendering them; the hook still checks them."""
    replay_dir = tmp_path / "replay"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"replay_dir: {replay_dir}\ncookiecutters_dir: {tmp_path / 'cookiecutters'}\n",
        encoding="utf-8",
    )
    cookiecutter(
        str(TEMPLATE_ROOT),
        no_input=True,
        output_dir=str(tmp_path / "first"),
        config_file=str(config),
    )
    replay_file = next(replay_dir.glob("*.json"))
    replay = json.loads(replay_file.read_text(encoding="utf-8"))
    replay["cookiecutter"]["author_email"] = "not-an-email"
    replay_file.write_text(json.dumps(replay), encoding="utf-8")
    output = tmp_path / "second"
    output.mkdir()

    with pytest.raises(FailedHookException):
        cookiecutter(
            str(TEMPLATE_ROOT),
            replay=str(replay_file),
            output_dir=str(output),
            config_file=str(config),
        )

    assert leftovers(output) == []
