"""Reading a baked service's GET /metrics with the baked project's own prometheus-client parser.

The template's environment does not install prometheus-client; each baked one does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

PARSE = """
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = text_string_to_metric_families(sys.stdin.read())
print(json.dumps([[s.name, s.labels, s.value] for f in families for s in f.samples]))
"""

Sample = tuple[str, dict[str, str], float]


def parse_samples(project: Path, text: str) -> list[Sample]:
    """(name, labels, value) of every sample in `text`, a scrape in Prometheus' text format."""
    parsed = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", PARSE],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [(name, labels, float(value)) for name, labels, value in json.loads(parsed.stdout)]
