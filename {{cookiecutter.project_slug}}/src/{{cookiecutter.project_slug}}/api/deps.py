"""Typed dependency aliases, so route signatures stay short: import them from here.

Each is defined beside the dependency it wraps; this module gathers them for the routes.
"""

from typing import Annotated

from fastapi import Depends

from {{ cookiecutter.project_slug }}.auth import get_current_user
from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection, get_cache
from {{ cookiecutter.project_slug }}.db.database import DatabaseDep
from {{ cookiecutter.project_slug }}.db.session import SessionDep, StreamingSessionDep
from {{ cookiecutter.project_slug }}.schemas import UserRead
from {{ cookiecutter.project_slug }}.settings import SettingsDep

CacheDep = Annotated[CacheConnection, Depends(get_cache)]
CurrentUserDep = Annotated[UserRead, Depends(get_current_user)]

__all__ = [
    "CacheDep",
    "CurrentUserDep",
    "DatabaseDep",
    "SessionDep",
    "SettingsDep",
    "StreamingSessionDep",
]
