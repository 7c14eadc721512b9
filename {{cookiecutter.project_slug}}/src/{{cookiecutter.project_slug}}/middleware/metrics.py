"""Counts every request by route template and status, and every cached GET by what it answered.

The route label is the template of the route that serves the path (`/api/items/{item_id}`),
never the path itself, so ids do not multiply the series; paths no route matches share one
label. A cache HIT is answered, and counted, by the cache's edge in front of the stack
(cache/edge.py): it never gets here.
"""

import time

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }} import metrics
from {{ cookiecutter.project_slug }}.cache.decorator import cache_policy
from {{ cookiecutter.project_slug }}.cache.edge import CACHE_STATUS_FIELD


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["app"].state.settings.metrics_enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The cache's edge, in front of the stack, made this request's Lookup.
        lookup = metrics.current_lookup.get()
        if lookup is None:
            lookup = metrics.Lookup()
            metrics.current_lookup.set(lookup)
        status = 500  # unless a response starts: Starlette answers an exception that gets here
        cache_status: bytes | None = None
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            route = self.route_for(scope)
            template = getattr(route, "path", metrics.UNMATCHED_ROUTE)
            method = scope["method"]
            cached = None
            if route is not None and method == "GET":
                cached = self.lookup_labels(route, cache_status, lookup)
            seconds = time.perf_counter() - started
            metrics.count_request(method, template, status, seconds, cached)

        async def send_counted(message: Message) -> None:
            nonlocal status, cache_status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message["headers"]:
                    if name == CACHE_STATUS_FIELD:
                        cache_status = value
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Before the last bytes go out: a scrape made once a client has its answer
                # already counts it, whichever worker the scrape reaches.
                count()
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            if not counted:
                count()

    @staticmethod
    def route_for(scope: Scope) -> BaseRoute | None:
        """The route that serves this request, as routing records it (a 405's included); None
        where no route matches."""
        route = scope.get("route")
        return route if isinstance(route, BaseRoute) else None

    @staticmethod
    def lookup_labels(
        route: BaseRoute, cache_status: bytes | None, lookup: metrics.Lookup
    ) -> tuple[str, str, str] | None:
        """What a GET to a cached route counts in cache_lookups_total, if anything."""
        if (policy := cache_policy(getattr(route, "endpoint", None))) is None:
            return None
        if cache_status == b"HIT":
            return (policy.namespace, "hit", lookup.tier)
        if cache_status == b"MISS":
            return (policy.namespace, "error" if lookup.failed else "miss", "")
        if lookup.bypassed:
            return (policy.namespace, "bypass", "")
        return None
