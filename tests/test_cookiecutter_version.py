"""A cookiecutter too old for the template stops with the fix, not with a blame on an answer.

Debian 12 packages cookiecutter 2.1.1, which predates boolean variables (2.2): it hands the
template the string "True" for `docker`, and the answer check would blame the user for it.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.baking import TEMPLATE_ROOT, clean_environment

OLD_COOKIECUTTER = "2.1.1"


@pytest.mark.slow
def test_cookiecutter_2_1_names_the_fix_and_leaves_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", f"cookiecutter=={OLD_COOKIECUTTER}"],
        env=clean_environment(),
        check=True,
    )
    output, replay = tmp_path / "output", tmp_path / "replay"
    output.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {replay}\ncookiecutters_dir: {tmp_path / 'cc'}\n")

    command = [str(venv / "bin" / "cookiecutter"), "--no-input", "--config-file", str(config)]
    completed = subprocess.run(
        [*command, "--output-dir", str(output), str(TEMPLATE_ROOT)],
        env=clean_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    printed = completed.stdout + completed.stderr

    assert completed.returncode != 0
    assert f"this template needs cookiecutter >= 2.2 (found {OLD_COOKIECUTTER})" in printed
    assert "pipx install cookiecutter" in printed
    assert "docker must be yes or no" not in printed
    assert "Traceback" not in printed
    assert list(output.iterdir()) == []
    assert not replay.exists() or list(replay.iterdir()) == []
