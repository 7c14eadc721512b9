"""The caller's own account."""

from fastapi import APIRouter

from {{ cookiecutter.project_slug }}.api.deps import CurrentUserDep
from {{ cookiecutter.project_slug }}.db.models import User
from {{ cookiecutter.project_slug }}.schemas import UserRead

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUserDep) -> User:
    return user
