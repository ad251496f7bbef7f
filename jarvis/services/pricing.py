"""Model prices and run costs.

Prices are per 1,000,000 tokens and versioned: a change is a new row with its own
``effective_from`` (history is never overwritten); the row id is the *price version* recorded on
each run. A price's ``model`` is an exact name or a pattern where ``*`` matches any characters.
For a run the price in force is: the most specific matching pattern (an exact name first, then
the longest pattern) and, of its versions, the latest with ``effective_from`` on or before the
day (UTC) the run ended. No match means *unpriced*: the cost stays NULL and is counted, never
silently zero. The ``offline`` provider has an explicit zero price (``offline,*``).

Token types are disjoint: ``input`` = uncached input, ``cache_read`` = input served from the
provider's cache, ``cache_write`` = input written to the cache (Anthropic cache creation).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Protocol, TypeVar

from jarvis.clock import Clock
from jarvis.db.repositories.audit import AuditRepository
from jarvis.db.repositories.pricing import (
    PricingRepository,
    bypasses_row_security,
    reprice_runs,
)
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ConfigError, ConflictError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.llm import base as llm

log = logging.getLogger(__name__)

MTOK = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.000001")
PRICE_FILE = "model_prices.csv"
PROVIDERS = ("openai", "anthropic", "openai_compatible", "offline")


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


class _PriceLike(Protocol):
    id: Any
    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date


P = TypeVar("P", bound=_PriceLike)


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


def select_price(rows: list[P], provider: str, model: str, day: date) -> P | None:
    """The price in force (see the module docstring); the SQL of reprice uses the same rule."""
    candidates = [
        r
        for r in rows
        if r.provider == provider and r.effective_from <= day and pattern_matches(r.model, model)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.model == model, len(r.model), r.effective_from))


def compute_cost(
    price: _PriceLike,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    total = (
        input_tokens * Decimal(price.input_per_mtok)
        + output_tokens * Decimal(price.output_per_mtok)
        + cache_read_tokens * Decimal(price.cache_read_per_mtok)
        + cache_write_tokens * Decimal(price.cache_write_per_mtok)
    ) / MTOK
    return total.quantize(COST_QUANTUM)


def load_price_file() -> list[dict[str, Any]]:
    """The seed prices shipped in ``jarvis/data/model_prices.csv`` as row dicts."""
    text = resources.files("jarvis.data").joinpath(PRICE_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rows = []
    for rec in csv.DictReader(lines):
        rows.append(
            {
                "provider": rec["provider"].strip(),
                "model": rec["model"].strip(),
                "input_per_mtok": Decimal(rec["input_per_mtok"]),
                "output_per_mtok": Decimal(rec["output_per_mtok"]),
                "cache_read_per_mtok": Decimal(rec["cache_read_per_mtok"]),
                "cache_write_per_mtok": Decimal(rec["cache_write_per_mtok"]),
                "effective_from": date.fromisoformat(rec["effective_from"].strip()),
            }
        )
    return rows


def _view(row: _PriceLike) -> PriceView:
    return PriceView(
        id=int(row.id),
        provider=row.provider,
        model=row.model,
        input_per_mtok=Decimal(row.input_per_mtok),
        output_per_mtok=Decimal(row.output_per_mtok),
        cache_read_per_mtok=Decimal(row.cache_read_per_mtok),
        cache_write_per_mtok=Decimal(row.cache_write_per_mtok),
        effective_from=row.effective_from,
        created_at=getattr(row, "created_at", None),
    )


def _price(value: Any, name: str) -> Decimal:
    try:
        dec = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"{name} must be a number.", field=name) from exc
    if not dec.is_finite() or dec < 0 or dec >= Decimal("1000000"):
        raise ValidationError(f"{name} must be between 0 and 999999.", field=name)
    return dec.quantize(COST_QUANTUM)


class PricingService:
    """Price table (read by all, versions added by admins) and the cost of a run."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def cost_for(self, provider: str, model: str, usage: llm.Usage, *, at: datetime) -> RunCost:
        """The cost of ``usage`` with the price version in force at ``at``."""
        with self._uow() as uow:
            return self.cost_in(
                PricingRepository(uow.session),
                provider,
                model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                at,
            )

    def cost_in(
        self,
        repo: PricingRepository,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        at: datetime | None = None,
    ) -> RunCost:
        """Like :meth:`cost_for`, inside the caller's transaction."""
        when = at or self._clock.now()
        day = when.astimezone(UTC).date() if when.tzinfo else when.date()
        price = select_price(repo.for_provider(provider), provider, model, day)
        if price is None:
            return RunCost(cost=None, price_version=None, unpriced=True)
        cost = compute_cost(
            price, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
        )
        return RunCost(cost=cost, price_version=int(price.id), unpriced=False)

    def list_prices(self, principal: Principal) -> list[PriceView]:
        """Every price version, newest first per model (everyone may read prices)."""
        with self._uow(principal) as uow:
            return [_view(r) for r in PricingRepository(uow.session).list()]

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
        provider = (data.provider or "").strip()
        model = (data.model or "").strip()
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
            repo = PricingRepository(uow.session)
            if repo.exists(provider, model, data.effective_from):
                raise ConflictError(
                    "A price for this model and date exists already; choose another effective date."
                )
            row = repo.add(
                provider=provider, model=model, effective_from=data.effective_from, **values
            )
            AuditRepository(uow.session).record(
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
        return view


def require_all_rows(conn: Any, action: str) -> None:
    """Refuse a maintenance ``action`` on a connection whose role does not see every user's rows.

    Under FORCE ROW LEVEL SECURITY an external owner that is neither superuser nor BYPASSRLS sees
    no runs at all: repricing or rebuilding would silently do nothing and report success."""
    if not bypasses_row_security(conn):
        raise ConfigError(
            f"{action} needs a database owner that sees every user's runs (a superuser or a "
            "role with BYPASSRLS); this connection's role has neither. Point DATABASE_URL at "
            "such a role (or ALTER ROLE ... BYPASSRLS)."
        )


def reprice(owner_session: Any, since: datetime) -> int:
    """Recompute run costs since ``since`` and rebuild the usage rollup from that day on.

    ``owner_session`` must see every user's rows (the owner connection of ``jarvis usage
    reprice``). Returns the number of runs repriced."""
    from jarvis.db.repositories.usage import rebuild_usage_rollup

    count = reprice_runs(owner_session, since)
    rebuild_usage_rollup(owner_session, from_day=since.date() - timedelta(days=1))
    return count
