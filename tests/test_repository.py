"""The template repository itself: no generated output committed, no reference to a missing file."""

import re
import subprocess

from tests.baking import TEMPLATE_ROOT

# Written by `make bench` and by the reliability tests' schemathesis run.
SCRATCH_OUTPUT = [".bench/results.json", ".schemathesis/default/cache/crashes/manifest.json"]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=TEMPLATE_ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_scratch_output_is_ignored_and_untracked() -> None:
    assert git("check-ignore", *SCRATCH_OUTPUT).split() == SCRATCH_OUTPUT
    assert git("ls-files", "--cached", "--ignored", "--exclude-standard") == ""


def test_every_test_module_the_hooks_cite_exists() -> None:
    cited = {
        path
        for hook in (TEMPLATE_ROOT / "hooks").glob("*.py")
        for path in re.findall(r"tests/[\w/]+\.py", hook.read_text(encoding="utf-8"))
    }

    assert cited
    assert sorted(path for path in cited if not (TEMPLATE_ROOT / path).exists()) == []
