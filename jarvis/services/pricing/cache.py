"""Price versions held in memory for a few seconds, so closing a run costs no price query.

Every finished run needs its provider's price versions (a handful of rows). Reading them in the
run's closing transaction was one of its two extra round trips (issue 16: keeping the rollup
current must cost <= 0.5 ms per run). Versions change rarely: this process's own edits
(``PricingService.add_price``) clear the cache at once; a version added by another process
(another app process, ``jarvis usage seed-prices``) applies to runs finishing at most
``ttl_seconds`` later, and ``jarvis usage reprice`` recomputes costs after the fact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from jarvis.db.uow import UnitOfWork

#: How long a provider's versions are reused before they are read again.
PRICE_CACHE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """A ``model_prices`` row, detached from any session (a :class:`PriceLike`)."""

    id: int
    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date


class PriceCache:
    """Each provider's price versions, shared by the threads of one process."""

    def __init__(
        self,
        ttl_seconds: float = PRICE_CACHE_SECONDS,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._now = monotonic
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, list[PriceVersion]]] = {}

    def fresh(self, provider: str) -> list[PriceVersion] | None:
        """The provider's versions if held and fresh (no database needed), else None."""
        with self._lock:
            entry = self._entries.get(provider)
            if entry is not None and self._now() - entry[0] < self._ttl:
                return entry[1]
        return None

    def for_provider(self, uow: UnitOfWork, provider: str) -> list[PriceVersion]:
        """The provider's versions: from memory while fresh, else read in ``uow``."""
        with self._lock:
            entry = self._entries.get(provider)
            if entry is not None and self._now() - entry[0] < self._ttl:
                return entry[1]
        rows = [
            PriceVersion(
                int(p.id),
                p.provider,
                p.model,
                p.input_per_mtok,
                p.output_per_mtok,
                p.cache_read_per_mtok,
                p.cache_write_per_mtok,
                p.effective_from,
            )
            for p in uow.prices.for_provider(provider)
        ]
        with self._lock:
            self._entries[provider] = (self._now(), rows)
        return rows

    def clear(self) -> None:
        """Forget every provider's versions (after a price was added)."""
        with self._lock:
            self._entries.clear()
