"""Every call to the cache server has a deadline, and a circuit breaker skips a hung server.

A stalled server, a partition or a failover does not refuse connections: it stops answering. So
each call gets CACHE_TIMEOUT_SECONDS (tens of milliseconds, not the seconds a database gets), and
after a failure the breaker opens: for CACHE_BREAKER_SECONDS (with jitter, so workers do not
return together) calls fail at once without touching the server. Then one call at a time probes
it; its success closes the breaker. Failures are logged once per interval, without tracebacks.

A write whose invalidation must be confirmed is tried even while the breaker is open
(`even_if_open`): skipped, it would be refused for the whole breaker period after one slow call,
while trying costs it at most one deadline; its success closes the breaker for everyone.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from {{ cookiecutter.project_slug }} import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CacheUnavailableError(Exception):
    """The cache server failed, timed out, or is being skipped while the breaker is open."""


class BreakerOpenError(CacheUnavailableError):
    """Skipped without trying: the breaker is open after a recent failure."""


class StoreRefusedError(Exception):
    """Raised by a store: the server answered but would not store (Redis out of memory)."""


class OncePerInterval:
    """A warning logged at most once per interval, with the count of those left out meanwhile."""

    def __init__(self, interval_seconds: float, left_out: str) -> None:
        self.interval_seconds = interval_seconds
        self.left_out = left_out  # what the left-out ones are, e.g. "errors"
        self.last = -float("inf")
        self.suppressed = 0

    def warn(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < self.interval_seconds:
            self.suppressed += 1
            return
        logger.warning(
            f"{message}. %d similar {self.left_out} in the last %.0f s were not logged.",
            *args,
            self.suppressed,
            self.interval_seconds,
        )
        self.last = now
        self.suppressed = 0


class Guard:
    def __init__(
        self,
        *,
        timeout_seconds: float,
        breaker_seconds: float,
        warning_interval_seconds: float,
        after_timeout: Callable[[], None] = lambda: None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.breaker_seconds = breaker_seconds
        # Called when a call was abandoned mid-way (see memcached.py: its connection is dirty).
        self.after_timeout = after_timeout
        self.open_until = 0.0
        self.probing = False
        self.failures = OncePerInterval(warning_interval_seconds, "errors")
        self.refusals = OncePerInterval(warning_interval_seconds, "refusals")

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self.open_until or self.probing

    async def run(
        self, operation: str, call: Callable[[], Awaitable[T]], *, even_if_open: bool = False
    ) -> T:
        """`call()` within the deadline; CacheUnavailableError if it fails or is skipped."""
        probe = False
        if not even_if_open:
            if time.monotonic() < self.open_until or self.probing:
                metrics.count_cache_error(operation, "breaker_open")
                raise BreakerOpenError(
                    f"cache {operation} skipped: the cache server failed recently"
                )
            probe = self.open_until > 0
            self.probing = probe
        try:
            async with asyncio.timeout(self.timeout_seconds):
                result = await call()
        except StoreRefusedError as error:
            # The server is up and answering: no reason to skip it for reads.
            self._refused(operation, error)
            raise CacheUnavailableError(f"cache {operation} refused: {error}") from error
        except Exception as error:  # any cache failure: skip the cache, never answer 500
            metrics.count_cache_error(operation, type(error).__name__)
            if isinstance(error, TimeoutError):
                self.after_timeout()
            self._trip(operation, error)
            raise CacheUnavailableError(
                f"cache {operation} failed: {type(error).__name__}"
            ) from error
        finally:
            if probe:
                self.probing = False
        self.open_until = 0.0
        return result

    async def attempt(self, operation: str, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        """`run`, with `fallback` when the cache is unavailable (reads, best-effort writes)."""
        try:
            return await self.run(operation, call)
        except CacheUnavailableError:
            return fallback

    def _trip(self, operation: str, error: Exception) -> None:
        jitter = random.uniform(0.8, 1.2)  # noqa: S311
        self.open_until = time.monotonic() + self.breaker_seconds * jitter
        self.failures.warn(
            "cache %s failed (%s: %s); serving without the cache for %.1f s",
            operation,
            type(error).__name__,
            error,
            self.breaker_seconds,
        )

    def _refused(self, operation: str, error: StoreRefusedError) -> None:
        """A cache that stops storing keeps answering correctly, so it must be said and counted."""
        metrics.count_refused_store(operation)
        self.refusals.warn(
            "cache %s refused (%s); responses are not being cached", operation, error
        )
