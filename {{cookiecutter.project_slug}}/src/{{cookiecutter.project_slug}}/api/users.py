"""The caller's own account."""

from fastapi import APIRouter, Request, Response, status

from {{ cookiecutter.project_slug }}.api.deps import CurrentUserDep, SessionDep, SettingsDep
from {{ cookiecutter.project_slug }}.auth import hash_token, new_token
from {{ cookiecutter.project_slug }}.cache.decorator import cached_response
from {{ cookiecutter.project_slug }}.cache.invalidation import invalidate_on_commit
from {{ cookiecutter.project_slug }}.cache.keys import IDENTITY
from {{ cookiecutter.project_slug }}.db.models import User
from {{ cookiecutter.project_slug }}.errors import ErrorResponse
from {{ cookiecutter.project_slug }}.schemas import UserRead

router = APIRouter(
    prefix="/api",
    tags=["users"],
    responses={status.HTTP_401_UNAUTHORIZED: {"model": ErrorResponse}},
)


@router.get("/me", response_model=UserRead)
@cached_response(namespace="users", per_user=True)
async def read_me(user: CurrentUserDep) -> UserRead:
    return user


@router.delete(
    "/me/token",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": ErrorResponse}},
)
async def revoke_token(
    user: CurrentUserDep, session: SessionDep, request: Request, settings: SettingsDep
) -> Response:
    """Revoke the caller's token at once, on every worker; `create-user` makes a new user.

    503 (and the token still valid) when the cache cannot confirm that no worker will accept
    the token any more: retry then.
    """
    stored = await session.get_one(User, user.id)
    # Replace the hash with one of a token nobody knows: the old token matches nothing.
    stored.token_hash = hash_token(new_token(user.id), settings.secret_key)
    invalidate_on_commit(request, IDENTITY, user_id=user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
