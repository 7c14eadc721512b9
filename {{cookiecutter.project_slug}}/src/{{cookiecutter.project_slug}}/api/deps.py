"""Typed dependency aliases, so route signatures stay short.

The lifespan stores long-lived resources on `app.state`; these accessors give them a type.
"""

from typing import Annotated

from fastapi import Depends, Request

from {{ cookiecutter.project_slug }}.cache.connection import CacheConnection
from {{ cookiecutter.project_slug }}.db.database import Database
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_cache(request: Request) -> CacheConnection:
    cache: CacheConnection = request.app.state.cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CacheDep = Annotated[CacheConnection, Depends(get_cache)]
