"""The run recorder's price cache: fresh for its TTL, read again after it, cleared by a new
price added in this process."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from jarvis.services.pricing.cache import PriceCache


class FakeUow:
    def __init__(self) -> None:
        self.reads = 0
        self.version = 1
        self.prices = self

    def for_provider(self, provider: str) -> list[Any]:
        self.reads += 1
        return [
            SimpleNamespace(
                id=self.version,
                provider=provider,
                model="m*",
                input_per_mtok=Decimal(1),
                output_per_mtok=Decimal(2),
                cache_read_per_mtok=Decimal(0),
                cache_write_per_mtok=Decimal(0),
                effective_from=date(2026, 1, 1),
            )
        ]


def test_versions_are_reused_for_the_ttl_then_read_again() -> None:
    now = [100.0]
    cache = PriceCache(30, monotonic=lambda: now[0])
    uow = FakeUow()
    assert cache.for_provider(uow, "openai")[0].id == 1  # type: ignore[arg-type]
    uow.version = 2
    now[0] += 29
    assert cache.for_provider(uow, "openai")[0].id == 1  # type: ignore[arg-type]
    assert uow.reads == 1
    now[0] += 2
    assert cache.for_provider(uow, "openai")[0].id == 2  # type: ignore[arg-type]
    uow.version = 3
    cache.clear()
    assert cache.for_provider(uow, "openai")[0].id == 3  # type: ignore[arg-type]
    assert uow.reads == 3
