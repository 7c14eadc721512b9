"""A call to an upstream service, cached once for every worker: fastapi-cache2 on a plain function.

`@cached` keys the result by the function and its plain-data arguments (the URL here; the
client says how to fetch, not what), so every worker and instance shares one answer per TTL,
and concurrent misses make one upstream call between them (cache/flight.py).
"""

import httpx
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.cache.decorator import cached

UPSTREAM_NAMESPACE = "upstream"
# How stale the reported status may be; the upstream is asked at most once per this long.
STATUS_TTL_SECONDS = 30


class UpstreamStatus(BaseModel):
    status: str


@cached(namespace=UPSTREAM_NAMESPACE, expire=STATUS_TTL_SECONDS)
async def fetch_upstream_status(client: httpx.AsyncClient, url: str) -> UpstreamStatus:
    """The upstream's own JSON status; raises httpx.HTTPError (never cached) when it fails."""
    response = await client.get(url)
    response.raise_for_status()
    return UpstreamStatus.model_validate_json(response.content)
