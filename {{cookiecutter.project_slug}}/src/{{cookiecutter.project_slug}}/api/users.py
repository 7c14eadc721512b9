"""The caller's own account."""

from fastapi import APIRouter, Response, status

from {{ cookiecutter.project_slug }}.api.deps import CurrentUserDep, SessionDep, SettingsDep
from {{ cookiecutter.project_slug }}.auth import hash_token, identity_cache_key, new_token
from {{ cookiecutter.project_slug }}.cache.decorator import cached_response
from {{ cookiecutter.project_slug }}.cache.guarded import guarded_backend
from {{ cookiecutter.project_slug }}.db.models import User
from {{ cookiecutter.project_slug }}.db.session import after_commit
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


@router.delete("/me/token", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    user: CurrentUserDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Revoke the caller's token at once, on every worker; `create-user` makes a new user."""
    stored = await session.get_one(User, user.id)
    revoked_hash = stored.token_hash
    # Replace the hash with one of a token nobody knows: the old token matches nothing.
    stored.token_hash = hash_token(new_token(), settings.secret_key)

    async def forget_identity() -> None:
        await guarded_backend().revoke(identity_cache_key(revoked_hash), revoked_hash)

    after_commit(session, forget_identity)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
