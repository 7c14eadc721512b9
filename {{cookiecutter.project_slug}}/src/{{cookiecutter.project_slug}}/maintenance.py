"""Maintenance mode: while MAINTENANCE_FILE exists, writes answer 503 and reads keep working.

`refuse_writes_during_maintenance` is a plain `def` on purpose: FastAPI runs sync dependencies
in its threadpool, so the blocking `stat` (slow on a network filesystem) never stalls the event
loop. Blocking work in an `async def` dependency would stall every request of the worker.
"""

from fastapi import HTTPException, status

from {{ cookiecutter.project_slug }}.settings import SettingsDep

RETRY_AFTER_SECONDS = "30"


def refuse_writes_during_maintenance(settings: SettingsDep) -> None:
    if settings.maintenance_file is not None and settings.maintenance_file.exists():
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="The service is in maintenance: writes are paused, reads still work",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
