"""Model prices: versions (never overwritten), seeding from the package file, repricing."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jarvis.cost_rounding import sql_round_cost
from jarvis.db.tables import ModelPrice


class PriceRow(TypedDict):
    """One price version to seed (USD per 1,000,000 tokens)."""

    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date


#: A price pattern as a LIKE pattern: escape LIKE's own wildcards, then ``*`` -> ``%``.
_LIKE_OF_PATTERN = (
    "replace(replace(replace(replace(p.model, '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%')"
)

#: The price in force for (provider, model, day): most specific pattern (exact name first, then
#: the longest pattern), then the latest version effective on or before the day. Same rule as
#: ``jarvis.services.pricing.select_price``.
_PRICE_LATERAL = f"""
    LEFT JOIN LATERAL (
        SELECT p.id, p.input_per_mtok, p.output_per_mtok,
               p.cache_read_per_mtok, p.cache_write_per_mtok
        FROM model_prices p
        WHERE p.provider = k.provider
          AND k.model LIKE {_LIKE_OF_PATTERN}
          AND p.effective_from <= k.day
        ORDER BY (p.model = k.model) DESC, length(p.model) DESC, p.effective_from DESC
        LIMIT 1
    ) p ON true
"""

_RUN_DAY_UTC = "(coalesce(r.finished_at, r.started_at) AT TIME ZONE 'UTC')::date"

#: A run's cost with the chosen price, rounded by the one rule (``jarvis.cost_rounding``), as
#: ``jarvis.services.pricing.rules.compute_cost`` computes it for live runs.
_COST = sql_round_cost(
    "(r.input_tokens * c.input_per_mtok + r.output_tokens * c.output_per_mtok"
    " + r.cache_read_tokens * c.cache_read_per_mtok"
    " + r.cache_write_tokens * c.cache_write_per_mtok) / 1000000"
)

#: The runs a reprice covers: finished, started in ``[since, until)`` (``until`` NULL: no end).
_REPRICED = (
    "r.started_at >= :since AND (CAST(:until AS timestamptz) IS NULL OR r.started_at < :until)"
    " AND r.status <> 'running'"
)

_REPRICE_SQL = f"""
WITH keys AS (
    SELECT DISTINCT r.provider, r.model, {_RUN_DAY_UTC} AS day
    FROM agent_runs r
    WHERE {_REPRICED}
), chosen AS (
    SELECT k.provider, k.model, k.day, p.id AS price_version, p.input_per_mtok,
           p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok
    FROM keys k {_PRICE_LATERAL}
)
UPDATE agent_runs r SET
    price_version = c.price_version,
    unpriced = c.price_version IS NULL,
    total_cost = CASE WHEN c.price_version IS NULL THEN NULL ELSE {_COST} END
FROM chosen c
WHERE {_REPRICED}
  AND r.provider = c.provider AND r.model = c.model AND {_RUN_DAY_UTC} = c.day
"""


class PricingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_provider(self, provider: str) -> builtins.list[ModelPrice]:
        """Every version of every pattern of one provider (a handful of rows). Pending changes
        are not flushed first: a run being closed is written once, with its cost, later."""
        with self.session.no_autoflush:
            stmt = select(ModelPrice).where(ModelPrice.provider == provider)
            return builtins.list(self.session.scalars(stmt))

    def list(self) -> builtins.list[ModelPrice]:
        return builtins.list(
            self.session.scalars(
                select(ModelPrice).order_by(
                    ModelPrice.provider, ModelPrice.model, ModelPrice.effective_from.desc()
                )
            )
        )

    def get(self, price_id: int) -> ModelPrice | None:
        return self.session.get(ModelPrice, price_id)

    def add(
        self,
        *,
        provider: str,
        model: str,
        input_per_mtok: Decimal,
        output_per_mtok: Decimal,
        cache_read_per_mtok: Decimal,
        cache_write_per_mtok: Decimal,
        effective_from: date,
    ) -> ModelPrice:
        row = ModelPrice(
            provider=provider,
            model=model,
            input_per_mtok=input_per_mtok,
            output_per_mtok=output_per_mtok,
            cache_read_per_mtok=cache_read_per_mtok,
            cache_write_per_mtok=cache_write_per_mtok,
            effective_from=effective_from,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def exists(self, provider: str, model: str, effective_from: date) -> bool:
        return bool(
            self.session.scalar(
                select(func.count())
                .select_from(ModelPrice)
                .where(
                    ModelPrice.provider == provider,
                    ModelPrice.model == model,
                    ModelPrice.effective_from == effective_from,
                )
            )
        )

    def seed(self, rows: Iterable[PriceRow]) -> int:
        """Insert price versions that are not there yet (same provider, model, effective_from);
        never overwrites a version. Returns how many were inserted."""
        values = builtins.list(rows)
        if not values:
            return 0
        stmt = (
            insert(ModelPrice)
            .values(values)
            .on_conflict_do_nothing(constraint="uq_model_prices_version")
            .returning(ModelPrice.id)
        )
        return len(builtins.list(self.session.execute(stmt)))

    def runs_to_reprice_by_day(self, since: datetime) -> builtins.list[tuple[date, int]]:
        """How many finished runs started on each UTC day from ``since`` on (days with none
        left out), oldest first: what a reprice will cover, for batching and progress."""
        day = "(r.started_at AT TIME ZONE 'UTC')::date"
        rows = self.session.execute(
            text(
                f"SELECT {day} AS day, count(*) FROM agent_runs r"
                f" WHERE {_REPRICED} GROUP BY 1 ORDER BY 1"
            ),
            {"since": since, "until": None},
        )
        return [(d, int(n)) for d, n in rows]

    def reprice_runs(self, since: datetime, until: datetime | None = None) -> int:
        """Recompute cost, price version and the unpriced flag of every finished run started at
        or after ``since`` (and before ``until``, if given) with the prices in force on the day
        each run ended (UTC). A run's new cost depends on that run and the prices only, so
        repricing a range in slices gives the same costs as at once. Only the runs this
        transaction sees are repriced (the owner of ``jarvis usage reprice`` sees them all).
        Returns the runs updated."""
        result = self.session.execute(text(_REPRICE_SQL), {"since": since, "until": until})
        return int(getattr(result, "rowcount", 0) or 0)
