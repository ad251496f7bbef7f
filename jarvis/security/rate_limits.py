"""A PostgreSQL-backed rate limiter (fixed windows), shared by every app process.

``RateLimiter.hit(key, limit, window_seconds) -> (allowed, retry_after)`` counts one event
for ``key`` in the current window and commits at once, so the count survives the caller's
rollback and holds across processes. Keys are free-form ("login:ip:1.2.3.4", "chat:<user>").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.repositories.rate_limits import RateLimitRepository
from jarvis.db.uow import UnitOfWorkFactory

MAX_KEY_LENGTH = 300


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float
    count: int

    def __iter__(self):  # type: ignore[no-untyped-def]
        # ``allowed, retry_after = limiter.hit(...)``
        yield self.allowed
        yield self.retry_after


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the fixed window holding ``now`` (aligned to the Unix epoch)."""
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % window_seconds, UTC)


class RateLimiter:
    """Fixed-window counters in the ``rate_limit_buckets`` table."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Count one event; ``allowed`` is False once more than ``limit`` fell in this window.

        ``retry_after`` is the number of seconds until the window ends (0 when allowed).
        """
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be positive")
        now = self._clock.now()
        start = window_start(now, window_seconds)
        with self._uow() as uow:
            repo = RateLimitRepository(uow.session)
            count = repo.increment(key[:MAX_KEY_LENGTH], start)
            if count == 1:
                # A new window: the key's older windows are of no use any more.
                repo.delete_before(key[:MAX_KEY_LENGTH], start)
            uow.commit()
        if count <= limit:
            return RateDecision(True, 0.0, count)
        retry = (start + timedelta(seconds=window_seconds) - now).total_seconds()
        return RateDecision(False, max(retry, 1.0), count)

    def peek(self, key: str, window_seconds: int) -> int:
        """How many events ``key`` has in the current window (no counting)."""
        start = window_start(self._clock.now(), window_seconds)
        with self._uow() as uow:
            return RateLimitRepository(uow.session).count(key[:MAX_KEY_LENGTH], start)

    def reset(self, key: str) -> None:
        """Forget every window of ``key``."""
        with self._uow() as uow:
            RateLimitRepository(uow.session).reset(key[:MAX_KEY_LENGTH])
            uow.commit()

    def purge(self, older_than_seconds: int = 86400) -> int:
        """Delete windows that started more than ``older_than_seconds`` ago."""
        cutoff = self._clock.now() - timedelta(seconds=older_than_seconds)
        with self._uow() as uow:
            removed = RateLimitRepository(uow.session).purge_before(cutoff)
            uow.commit()
        return removed
