"""What the pricing service returns to pages and callers, and what an admin enters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class RunCost:
    """The cost of one run: ``cost`` is None exactly when ``unpriced``."""

    cost: Decimal | None
    price_version: int | None
    unpriced: bool


@dataclass(frozen=True, slots=True)
class PriceView:
    id: int
    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PriceInput:
    """A new price version entered by an admin."""

    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date
