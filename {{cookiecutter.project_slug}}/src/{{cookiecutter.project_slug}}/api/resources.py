"""What every per-user resource router shares: its documented errors, ids and write guard.

A resource is a table users own (db/models.py, OwnedRecord) and one module of routes, such as
api/items.py; README, "Adding a resource", walks through adding one. The owner lookup is
`Model.get_owned(session, user.id, record_id)`, whose RecordNotFoundError answers 404.
"""

from typing import Annotated, Any

from fastapi import Depends, status
from fastapi import Path as PathParam

from {{ cookiecutter.project_slug }}.errors import ErrorResponse
from {{ cookiecutter.project_slug }}.maintenance import refuse_writes_during_maintenance

Responses = dict[int | str, dict[str, Any]]


def documented(*codes: int) -> Responses:
    """`responses=` for the OpenAPI schema: these status codes answer in the error shape."""
    return {code: {"model": ErrorResponse} for code in codes}


# Every route of a resource: no token (401), or a token without the route's scope (403).
AUTH_ERRORS = documented(status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN)
# Writes also: 400, a body that is not JSON at all; 503, maintenance, or a cache that cannot be
# invalidated.
WRITE_ERRORS = documented(status.HTTP_400_BAD_REQUEST, status.HTTP_503_SERVICE_UNAVAILABLE)
NOT_FOUND = documented(status.HTTP_404_NOT_FOUND)

# `dependencies=WRITE_GUARDS` on every write: MAINTENANCE_FILE pauses it.
WRITE_GUARDS = [Depends(refuse_writes_during_maintenance)]

# Ids are 32-bit integer columns; a larger one is a 422, not a database error.
RecordId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
# Bounded like ids: the databases refuse an OFFSET beyond 64 bits with an error.
MAX_OFFSET = 2**31 - 1
