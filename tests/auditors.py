"""Outside auditors the generated files must satisfy, run offline from the template's dev group.

zizmor audits GitHub workflows and Dependabot configurations; hadolint audits Dockerfiles;
check-jsonschema validates against the schemas it ships with. Each helper returns findings as
readable lines, so a test asserts `== []` and a failure names what was found and where.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
TIMEOUT_SECONDS = 120


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def zizmor_findings(root: Path, *files: str) -> list[str]:
    """zizmor's findings (its default persona) for `files`, relative to `root`.

    --offline: no GitHub API calls (they need a token and the network); --no-config: a
    zizmor.yml the project might add later cannot silence a finding here.
    """
    command = ["zizmor", "--offline", "--no-config", "--no-progress", "--format", "json"]
    result = _run(root, str(BIN / command[0]), *command[1:], *files)
    # Exit 0: nothing found; 10 and above: findings of some severity; anything else: an error.
    assert result.returncode == 0 or result.returncode >= 10, result.stderr
    findings = json.loads(result.stdout)
    return [
        f"{finding['ident']} at {location['symbolic']['key']['Local']['verbatim_path']}:"
        f"{location['concrete']['location']['start_point']['row'] + 1}: {finding['desc']}"
        for finding in findings
        for location in finding["locations"][:1]
    ]


def hadolint_findings(dockerfile: Path) -> list[str]:
    """Every hadolint finding down to style level; inline `# hadolint ignore=` still applies."""
    command = ["hadolint", "--no-color", "--format", "json", "--failure-threshold", "style"]
    result = _run(dockerfile.parent, str(BIN / command[0]), *command[1:], dockerfile.name)
    assert result.returncode in {0, 1}, result.stderr
    return [
        f"{finding['code']} at {finding['file']}:{finding['line']}: {finding['message']}"
        for finding in json.loads(result.stdout)
    ]


def schema_errors(path: Path, schema: str) -> str | None:
    """None when `path` validates against check-jsonschema's bundled `vendor.<schema>`."""
    command = ["check-jsonschema", "--builtin-schema", f"vendor.{schema}", path.name]
    result = _run(path.parent, str(BIN / command[0]), *command[1:])
    return None if result.returncode == 0 else result.stdout + result.stderr
