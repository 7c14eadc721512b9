"""Invalidate cached responses when a write commits."""

from fastapi_cache import FastAPICache
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.cache.guarded import guarded_backend
from {{ cookiecutter.project_slug }}.cache.keys import user_scope
from {{ cookiecutter.project_slug }}.db.session import after_commit


def invalidate_after_commit(session: AsyncSession, namespace: str, *, user_id: int) -> None:
    """Invalidate `namespace` for `user_id` once `session` commits, before the response is sent.

    Not earlier: a read between the invalidation and the commit would cache the old rows again.
    Not at all if the request fails: then nothing changed.
    """
    scope = user_scope(f"{FastAPICache.get_prefix()}:{namespace}", user_id)

    async def invalidate() -> None:
        await guarded_backend().invalidate(scope)

    after_commit(session, invalidate)
