"""Invalidation around a write's commit: no read after the write's 2xx is ever stale.

A write that changes what a cached namespace returns calls `invalidate_on_commit`. Then:

1. Before the commit, the namespace is marked as written (its version state counts one more
   write in flight). Readers that see the mark serve from the database and store nothing. If the
   mark cannot be confirmed (the cache server failed, hung or is skipped by the breaker), the
   write raises CacheUnavailableError: it rolls back and answers 503 with Retry-After.
2. The transaction commits.
3. After the commit the mark is removed and a fresh random version settles: entries computed
   before the write carry an older version and are never served again. If this step fails, the
   mark stays until it expires (PENDING_WRITE_SECONDS); meanwhile reads bypass the cache, and
   afterwards the missing version is started afresh. Either way nothing computed before the
   commit is served after the 2xx, whatever the cache server did meanwhile (a partition, a
   restart from its append-only file, a failover).

So while the cache server is unreachable, writes to cached namespaces answer 503: a stale read
after a 2xx is the one thing this template never trades for availability.
"""

from functools import partial

from fastapi import Request

from {{ cookiecutter.project_slug }} import metrics
from {{ cookiecutter.project_slug }}.cache import keys
from {{ cookiecutter.project_slug }}.cache.backend import ResponseCache
from {{ cookiecutter.project_slug }}.db.session import after_commit, before_commit


def invalidate_on_commit(request: Request, namespace: str, *, user_id: int | None = None) -> None:
    """Invalidate `namespace` around the request's commit: `user_id`'s part, or the shared one.

    The request's session is the one SessionDep keeps on `request.state.session`, so the route
    must depend on SessionDep.
    """
    session = getattr(request.state, "session", None)
    if session is None:
        raise RuntimeError("invalidate_on_commit needs a route that depends on SessionDep")
    cache: ResponseCache = request.app.state.cache
    if user_id is None:
        partition = keys.shared_partition(namespace)
    else:
        partition = keys.user_partition(user_id)
    state_key = keys.namespace_state_key(keys.namespace_key(cache.prefix, partition, namespace))
    before_commit(session, partial(cache.begin_write, state_key))
    after_commit(session, partial(cache.end_write, state_key))
    after_commit(session, partial(metrics.count_invalidation, namespace))
