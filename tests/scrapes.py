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
print(json.dumps([
    [[s.name, s.labels, s.value] for f in text_string_to_metric_families(text) for s in f.samples]
    for text in json.load(sys.stdin)
]))
"""

Sample = tuple[str, dict[str, str], float]


def parse_scrapes(project: Path, texts: list[str]) -> list[list[Sample]]:
    """(name, labels, value) of every sample of each scrape, in Prometheus' text format.

    One interpreter for all of them: starting one per scrape would cost more than the scrapes.
    """
    parsed = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", PARSE],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [
        [(name, labels, float(value)) for name, labels, value in samples]
        for samples in json.loads(parsed.stdout)
    ]


def parse_samples(project: Path, text: str) -> list[Sample]:
    return parse_scrapes(project, [text])[0]
