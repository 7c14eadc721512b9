"""Typed dependency aliases, so route signatures stay short: import them from here.

Each is defined beside the dependency it wraps; this module gathers them for the routes.
"""

from typing import Annotated

from fastapi import Depends

from {{ cookiecutter.project_slug }}.auth import CurrentUserDep, require_scope
from {{ cookiecutter.project_slug }}.cache.backend import CacheDep
from {{ cookiecutter.project_slug }}.context import RequestIdDep
from {{ cookiecutter.project_slug }}.db.database import DatabaseDep
from {{ cookiecutter.project_slug }}.db.session import SessionDep, StreamingSessionDep
from {{ cookiecutter.project_slug }}.http_client import HttpClientDep
from {{ cookiecutter.project_slug }}.schemas import UserRead
from {{ cookiecutter.project_slug }}.scopes import ITEMS_READ, ITEMS_WRITE
from {{ cookiecutter.project_slug }}.settings import SettingsDep

ItemsReaderDep = Annotated[UserRead, Depends(require_scope(ITEMS_READ))]
ItemsWriterDep = Annotated[UserRead, Depends(require_scope(ITEMS_WRITE))]

__all__ = [
    "CacheDep",
    "CurrentUserDep",
    "DatabaseDep",
    "HttpClientDep",
    "ItemsReaderDep",
    "ItemsWriterDep",
    "RequestIdDep",
    "SessionDep",
    "SettingsDep",
    "StreamingSessionDep",
]
