"""The pricing rules, pure (no database): which price version applies and what a run costs.

Prices are per 1,000,000 tokens and versioned: a change is a new row with its own
``effective_from`` (history is never overwritten); the row id is the *price version* recorded on
each run. A price's ``model`` is an exact name or a pattern where ``*`` matches any characters.
For a run the price in force is: the most specific matching pattern (an exact name first, then
the longest pattern) and, of its versions, the latest with ``effective_from`` on or before the
day (UTC) the run ended. No match means *unpriced*: the cost stays NULL and is counted, never
silently zero. The ``offline`` provider has an explicit zero price (``offline,*``).

Token types are disjoint (:class:`jarvis.llm.base.Usage`): ``input`` = uncached input,
``cache_read`` = input served from the provider's cache, ``cache_write`` = input written to the
cache (Anthropic cache creation). Costs are rounded by the one rule of
:mod:`jarvis.cost_rounding`; ``jarvis usage reprice`` does the same in SQL
(``jarvis.db.repositories.pricing``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol, TypeVar

from jarvis.cost_rounding import COST_QUANTUM, round_cost
from jarvis.llm.base import Usage
from jarvis.services.pricing.views import RunCost

__all__ = [
    "COST_QUANTUM",
    "MTOK",
    "PriceLike",
    "compute_cost",
    "pattern_matches",
    "price_day",
    "run_cost",
    "select_price",
]

MTOK = Decimal(1_000_000)


class PriceLike(Protocol):
    """A price version: a ``model_prices`` row, a :class:`PriceView` or a test's stand-in."""

    @property
    def id(self) -> int: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def input_per_mtok(self) -> Decimal: ...
    @property
    def output_per_mtok(self) -> Decimal: ...
    @property
    def cache_read_per_mtok(self) -> Decimal: ...
    @property
    def cache_write_per_mtok(self) -> Decimal: ...
    @property
    def effective_from(self) -> date: ...


P = TypeVar("P", bound=PriceLike)


def pattern_matches(pattern: str, model: str) -> bool:
    """``*`` matches any run of characters; everything else matches itself (case-sensitive)."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return pattern == model
    if not model.startswith(parts[0]):
        return False
    pos = len(parts[0])
    for middle in parts[1:-1]:
        found = model.find(middle, pos)
        if found < 0:
            return False
        pos = found + len(middle)
    last = parts[-1]
    return len(model) - pos >= len(last) and model.endswith(last)


def select_price(rows: Iterable[P], provider: str, model: str, day: date) -> P | None:
    """The price in force (see the module docstring); the SQL of reprice uses the same rule."""
    candidates = [
        r
        for r in rows
        if r.provider == provider and r.effective_from <= day and pattern_matches(r.model, model)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.model == model, len(r.model), r.effective_from))


def compute_cost(price: PriceLike, usage: Usage) -> Decimal:
    """Each token type at its own rate, rounded by the one cost rounding rule."""
    total = (
        usage.input_tokens * Decimal(price.input_per_mtok)
        + usage.output_tokens * Decimal(price.output_per_mtok)
        + usage.cache_read_tokens * Decimal(price.cache_read_per_mtok)
        + usage.cache_write_tokens * Decimal(price.cache_write_per_mtok)
    ) / MTOK
    return round_cost(total)


def price_day(at: datetime) -> date:
    """The day whose prices apply to a run that ended at ``at``: its UTC day."""
    return at.astimezone(UTC).date() if at.tzinfo else at.date()


def run_cost(
    prices: Iterable[PriceLike], provider: str, model: str, usage: Usage, *, at: datetime
) -> RunCost:
    """The cost of ``usage`` on ``provider``/``model`` with the version in force at ``at``."""
    price = select_price(prices, provider, model, price_day(at))
    if price is None:
        return RunCost(cost=None, price_version=None, unpriced=True)
    return RunCost(cost=compute_cost(price, usage), price_version=int(price.id), unpriced=False)
