"""A PostgreSQL-backed rate limiter (fixed windows), shared by every app process.

``RateLimiter.hit(key, limit, window_seconds) -> RateDecision`` counts one event for ``key`` in
the current window and commits at once, so the count survives the caller's rollback and holds
across processes. Keys are free-form ("login:ip:1.2.3.4", "chat:messages:<user>").

The window maths (:func:`window_start`, :func:`decide`) is pure; only :class:`RateLimiter`
touches the database, through the unit of work's ``rate_limits`` repository.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWorkFactory

MAX_KEY_LENGTH = 300


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one counted event.

    ``allowed`` is False once more than the limit fell in the window; ``retry_after`` is the
    number of seconds until the window ends (0 when allowed, at least 1 when refused);
    ``count`` is how many events the window holds now, this one included.
    """

    allowed: bool
    retry_after: float
    count: int

    def __iter__(self) -> Iterator[bool | float]:
        # ``allowed, retry_after = limiter.hit(...)``
        yield self.allowed
        yield self.retry_after


# -- the window maths (pure) ------------------------------------------------------------------


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the fixed window holding ``now`` (aligned to the Unix epoch)."""
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % window_seconds, UTC)


def decide(
    count: int, limit: int, *, start: datetime, window_seconds: int, now: datetime
) -> RateDecision:
    """The decision for the ``count``-th event of the window that began at ``start``."""
    if count <= limit:
        return RateDecision(True, 0.0, count)
    retry = (start + timedelta(seconds=window_seconds) - now).total_seconds()
    return RateDecision(False, max(retry, 1.0), count)


# -- the service --------------------------------------------------------------------------------


class RateLimiter:
    """Fixed-window counters in the ``rate_limit_buckets`` table."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        """Count one event; ``allowed`` is False once more than ``limit`` fell in this window."""
        return self.hit_all([(key, limit)], window_seconds)[0]

    def hit_all(self, limits: Sequence[tuple[str, int]], window_seconds: int) -> list[RateDecision]:
        """Count one event against each ``(key, limit)``, all in one statement, and decide
        each (an event refused by one limit still counts against the others). List the keys
        in one fixed order of kinds wherever they are counted together (see
        ``RateLimitRepository.hit_many``)."""
        if window_seconds < 1 or any(limit < 1 for _, limit in limits):
            raise ValueError("limit and window_seconds must be positive")
        now = self._clock.now()
        start = window_start(now, window_seconds)
        keys = [key[:MAX_KEY_LENGTH] for key, _ in limits]
        with self._uow.statements() as uow:  # one statement, no transaction around it
            counts = uow.rate_limits.hit_many(keys, start)  # a new window drops older ones
            uow.commit()
        return [
            decide(count, limit, start=start, window_seconds=window_seconds, now=now)
            for count, (_, limit) in zip(counts, limits, strict=True)
        ]

    def peek(self, key: str, window_seconds: int) -> int:
        """How many events ``key`` has in the current window (no counting)."""
        start = window_start(self._clock.now(), window_seconds)
        with self._uow() as uow:
            return uow.rate_limits.count(key[:MAX_KEY_LENGTH], start)

    def reset(self, key: str) -> None:
        """Forget every window of ``key``."""
        with self._uow() as uow:
            uow.rate_limits.reset(key[:MAX_KEY_LENGTH])
            uow.commit()

    def purge(self, older_than_seconds: int = 86400) -> int:
        """Delete windows that started more than ``older_than_seconds`` ago."""
        cutoff = self._clock.now() - timedelta(seconds=older_than_seconds)
        with self._uow() as uow:
            removed = uow.rate_limits.purge_before(cutoff)
            uow.commit()
        return removed
