"""The pricing service: the price table (read by all, versions added by admins) and run costs.

The rules (which version applies, the arithmetic) are pure functions in
:mod:`jarvis.services.pricing.rules`.
"""

from __future__ import annotations

import csv
import logging
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources

from jarvis.clock import Clock
from jarvis.cost_rounding import COST_QUANTUM
from jarvis.db.repositories.pricing import PriceRow
from jarvis.db.tables import ModelPrice
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ConflictError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.base import Usage
from jarvis.services.pricing.cache import PriceCache, PriceVersion
from jarvis.services.pricing.rules import price_day, run_cost, select_price
from jarvis.services.pricing.views import PriceInput, PriceView, RunCost
from jarvis.validation import clean_line

log = logging.getLogger(__name__)

PRICE_FILE = "model_prices.csv"
PROVIDERS = ("openai", "anthropic", "openai_compatible", "offline")


def load_price_file() -> list[PriceRow]:
    """The seed prices shipped in ``jarvis/data/model_prices.csv`` (``jarvis usage
    seed-prices`` adds the versions a database lacks)."""
    text = resources.files("jarvis.data").joinpath(PRICE_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [
        PriceRow(
            provider=rec["provider"].strip(),
            model=rec["model"].strip(),
            input_per_mtok=Decimal(rec["input_per_mtok"]),
            output_per_mtok=Decimal(rec["output_per_mtok"]),
            cache_read_per_mtok=Decimal(rec["cache_read_per_mtok"]),
            cache_write_per_mtok=Decimal(rec["cache_write_per_mtok"]),
            effective_from=date.fromisoformat(rec["effective_from"].strip()),
        )
        for rec in csv.DictReader(lines)
    ]


def _view(row: ModelPrice) -> PriceView:
    return PriceView(
        id=int(row.id),
        provider=row.provider,
        model=row.model,
        input_per_mtok=Decimal(row.input_per_mtok),
        output_per_mtok=Decimal(row.output_per_mtok),
        cache_read_per_mtok=Decimal(row.cache_read_per_mtok),
        cache_write_per_mtok=Decimal(row.cache_write_per_mtok),
        effective_from=row.effective_from,
        created_at=row.created_at,
    )


def _price(value: object, name: str) -> Decimal:
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"{name} must be a number.", field=name) from exc
    if not dec.is_finite() or dec < 0 or dec >= Decimal("1000000"):
        raise ValidationError(f"{name} must be between 0 and 999999.", field=name)
    return dec.quantize(COST_QUANTUM)


class PricingService:
    """Price table (read by all, versions added by admins) and the cost of a run."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, cache: PriceCache | None = None
    ) -> None:
        self._uow = uow
        self._clock = clock
        # Shared with the run recorder: a version added here applies to the next run at once.
        self._cache = cache or PriceCache()

    def cost_for(self, provider: str, model: str, usage: Usage, *, at: datetime) -> RunCost:
        """The cost of ``usage`` with the price version in force at ``at`` (its UTC day)."""
        return run_cost(self._prices_of(provider), provider, model, usage, at=at)

    def rates_for(
        self, provider: str, model: str, *, at: datetime
    ) -> tuple[Decimal, Decimal] | None:
        """USD per input token and per output token in force at ``at`` (None: unpriced)."""
        price = select_price(self._prices_of(provider), provider, model, price_day(at))
        if price is None:
            return None
        million = Decimal(1_000_000)
        return Decimal(price.input_per_mtok) / million, Decimal(price.output_per_mtok) / million

    def _prices_of(self, provider: str) -> list[PriceVersion]:
        """The provider's price versions from the process's price cache (read again after
        its few seconds; this process's own price edits clear it)."""
        fresh = self._cache.fresh(provider)
        if fresh is not None:
            return fresh
        with self._uow() as uow:
            return self._cache.for_provider(uow, provider)

    def list_prices(self, principal: Principal) -> list[PriceView]:
        """Every price version, newest first per model (everyone may read prices)."""
        with self._uow(principal) as uow:
            return [_view(r) for r in uow.prices.list()]

    def current_prices(self, principal: Principal, on: date | None = None) -> list[PriceView]:
        """The version in force today (or ``on``) of each (provider, pattern)."""
        day = on or self._clock.now().date()
        latest: dict[tuple[str, str], PriceView] = {}
        for p in self.list_prices(principal):
            if p.effective_from > day:
                continue
            key = (p.provider, p.model)
            if key not in latest or latest[key].effective_from < p.effective_from:
                latest[key] = p
        return sorted(latest.values(), key=lambda p: (p.provider, p.model))

    def add_price(self, principal: Principal, data: PriceInput) -> PriceView:
        """Add a new price version (admins only). History is never overwritten: a version for
        the same provider, pattern and date is refused."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        provider = clean_line(data.provider, field="provider", max_chars=32, required=False)
        model = clean_line(data.model, field="model", max_chars=10_000, required=False)
        if provider not in PROVIDERS:
            raise ValidationError("Choose a provider.", field="provider")
        if not model or len(model) > 200:
            raise ValidationError(
                "Enter a model name or pattern (e.g. gpt-4o-mini*).", field="model"
            )
        values = {
            "input_per_mtok": _price(data.input_per_mtok, "input_per_mtok"),
            "output_per_mtok": _price(data.output_per_mtok, "output_per_mtok"),
            "cache_read_per_mtok": _price(data.cache_read_per_mtok, "cache_read_per_mtok"),
            "cache_write_per_mtok": _price(data.cache_write_per_mtok, "cache_write_per_mtok"),
        }
        with self._uow(principal) as uow:
            if uow.prices.exists(provider, model, data.effective_from):
                raise ConflictError(
                    "A price for this model and date exists already; choose another effective date."
                )
            row = uow.prices.add(
                provider=provider, model=model, effective_from=data.effective_from, **values
            )
            uow.audit.record(
                "price.added",
                user_id=principal.user_id,
                target=f"{provider}/{model}",
                details={
                    "effective_from": data.effective_from.isoformat(),
                    **{k: str(v) for k, v in values.items()},
                },
            )
            view = _view(row)
            uow.commit()
        self._cache.clear()
        return view
