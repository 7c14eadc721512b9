"""Typed dependency aliases, so route signatures stay short."""

from typing import Annotated

from fastapi import Depends

from {{ cookiecutter.project_slug }}.auth import get_current_user
from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection, get_cache
from {{ cookiecutter.project_slug }}.db.database import Database, get_database
from {{ cookiecutter.project_slug }}.db.session import SessionDep, StreamingSessionDep
from {{ cookiecutter.project_slug }}.schemas import UserRead
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
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
