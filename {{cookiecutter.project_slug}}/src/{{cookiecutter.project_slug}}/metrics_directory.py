"""Where this server run's metrics live: one directory per run, shared by its workers.

prometheus-client's multiprocess mode (metrics.py) keeps each process's values in files under
PROMETHEUS_MULTIPROC_DIR, and chooses that mode when it is first imported; so the package sets
the variable on import (__init__.py), before anything can import prometheus-client.

The directory is `<tmp>/<package>-metrics-<uid>/<pid>-<start>`, named after the server's main
process (uvicorn's supervisor, or the one process without `--workers`) and the time it started:
a restarted server starts from zero even where its pid comes back (PID 1 in a container).
Directories of runs whose process is gone are removed when a run starts. Set
PROMETHEUS_MULTIPROC_DIR to choose the directory yourself (under gunicorn, for instance); then
emptying it before each start is yours to do.
"""

import os
import tempfile
from multiprocessing import parent_process
from pathlib import Path
from shutil import rmtree


def process_start(pid: int) -> str:
    """When `pid` started (clock ticks since boot, from /proc); "" where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return ""
    # The fields after the command name, which is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[19]


def run_name(pid: int) -> str:
    return f"{pid}-{process_start(pid)}"


def base_directory() -> Path:
    return Path(tempfile.gettempdir()) / f"{__name__.partition('.')[0]}-metrics-{os.getuid()}"


def run_directory() -> Path:
    """This server run's directory, created; runs whose main process is gone are removed."""
    base = base_directory()
    base.mkdir(mode=0o700, exist_ok=True)
    # uvicorn starts its workers with multiprocessing; without --workers it serves from the
    # process it started in.
    parent = parent_process()
    directory = base / run_name(os.getpid() if parent is None or parent.pid is None else parent.pid)
    directory.mkdir(exist_ok=True)
    for run in base.iterdir():
        pid = run.name.partition("-")[0]
        if run != directory and (not pid.isdigit() or run.name != run_name(int(pid))):
            rmtree(run, ignore_errors=True)
    return directory


def use_run_directory() -> None:
    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    # A directory of ours came from the environment of the process that started this one
    # (a test runner's workers, say), which is not necessarily this run's.
    if chosen is None or Path(chosen).parent == base_directory():
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(run_directory())
