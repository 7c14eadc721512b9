"""The status of the upstream at UPSTREAM_STATUS_URL, as this service last saw it."""

from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, status
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.api.deps import HttpClientDep, SettingsDep
from {{ cookiecutter.project_slug }}.errors import ErrorResponse
from {{ cookiecutter.project_slug }}.upstream import UpstreamStatus, fetch_upstream_status

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse}
    for code in (status.HTTP_404_NOT_FOUND, status.HTTP_502_BAD_GATEWAY)
}

router = APIRouter(prefix="/api", tags=["upstream"])


@router.get("/upstream", response_model=UpstreamStatus, responses=ERRORS)
async def read_upstream_status(client: HttpClientDep, settings: SettingsDep) -> UpstreamStatus:
    """Asked upstream at most once per STATUS_TTL_SECONDS, whichever worker answers."""
    if settings.upstream_status_url is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="UPSTREAM_STATUS_URL is not set")
    url = settings.upstream_status_url.get_secret_value()
    try:
        return await fetch_upstream_status(client, url)
    except (httpx.HTTPError, ValidationError):
        # Not the URL: it may hold a token.
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, detail="The upstream did not answer with a status"
        ) from None
