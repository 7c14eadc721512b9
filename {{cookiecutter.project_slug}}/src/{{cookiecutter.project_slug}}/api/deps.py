"""Typed dependency aliases, so route signatures stay short: import them from here.

Each is defined beside the dependency it wraps; this module gathers them for the routes. A
resource's own scope checks (`ItemsReaderDep`, ...) live beside its routes, in its module.
"""

from {{ cookiecutter.project_slug }}.auth import CurrentUserDep
from {{ cookiecutter.project_slug }}.cache.backend import CacheDep
from {{ cookiecutter.project_slug }}.context import RequestIdDep
from {{ cookiecutter.project_slug }}.db.database import DatabaseDep
from {{ cookiecutter.project_slug }}.db.session import SessionDep, StreamingSessionDep
from {{ cookiecutter.project_slug }}.http_client import HttpClientDep
from {{ cookiecutter.project_slug }}.settings import SettingsDep

__all__ = [
    "CacheDep",
    "CurrentUserDep",
    "DatabaseDep",
    "HttpClientDep",
    "RequestIdDep",
    "SessionDep",
    "SettingsDep",
    "StreamingSessionDep",
]
