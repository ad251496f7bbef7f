"""Usage analytics SQL: the daily rollups (kept current per run) and the recent-runs list.

Designed for ~1M runs (see PERFORMANCE.md and benchmarks/usage_bench.py): every dashboard
aggregate reads ``usage_daily`` / ``tool_usage_daily`` (one row per user, local day, model or
tool) instead of ``agent_runs`` — for everyone (an admin), the all-users rollups
``usage_daily_all`` / ``tool_usage_daily_all`` that triggers keep from them (0012); only the paged recent-runs list touches ``agent_runs``, through
``(user_id, started_at)`` or, for everyone, ``(started_at)``. Row-level security applies: a user
sees their own rows, an admin everyone's (``*_admin_read`` policies).

How a run counts in the rollups is ONE SQL function, ``jarvis_usage_rollup_add`` (migration
0010), used for each finished run, by stale-run recovery and by every rebuild. Rollup days are
the *user's* local day (``users.timezone``) of the run's start (of a tool call's creation).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session

from jarvis.db.tables import AgentRun

#: The usage page's latency per model is measured on this many of the range's latest runs.
LATENCY_SAMPLE = 2000

_SUMS = """
    coalesce(sum(runs), 0) AS runs,
    coalesce(sum(failed_runs), 0) AS failed_runs,
    coalesce(sum(unpriced_runs), 0) AS unpriced_runs,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
    coalesce(sum(total_tokens), 0) AS total_tokens,
    coalesce(sum(cost), 0) AS cost
"""

_ADD_RUNS = text("SELECT jarvis_usage_rollup_add(:run_ids, CAST(:from_day AS date))").bindparams(
    bindparam("run_ids", type_=ARRAY(UUID(as_uuid=True)))
)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Sums over rollup rows (a range, or one day and model)."""

    runs: int
    failed_runs: int
    unpriced_runs: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class DailyTotals:
    day: date
    provider: str
    model: str
    totals: UsageTotals


@dataclass(frozen=True, slots=True)
class ToolTotals:
    tool_id: str
    calls: int
    errors: int
    denied: int
    latency_count: int
    latency_ms_sum: int
    latency_ms_max: int


@dataclass(frozen=True, slots=True)
class UserTotals:
    user_id: uuid.UUID
    email: str
    display_name: str
    runs: int
    unpriced_runs: int
    total_tokens: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of the recent-runs list, with its user's email."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    provider: str
    model: str
    status: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    total_cost: Decimal | None
    unpriced: bool
    price_version: int | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class LatencyRecord:
    """Latency of one model's completed runs (start to end), in milliseconds."""

    provider: str
    model: str
    runs: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class UserBudgetRecord:
    id: uuid.UUID
    email: str
    display_name: str
    role: str
    monthly_budget_usd: Decimal | None
    timezone: str


def _daily_table(user_id: uuid.UUID | None) -> str:
    """One user's rows, or everyone's from the all-users rollup (0012: a few thousand rows
    for 30 days instead of one per user and day; admins only, by row-level security)."""
    return "usage_daily" if user_id is not None else "usage_daily_all"


def _where(*conds: str | None) -> str:
    present = [c for c in conds if c]
    return ("WHERE " + " AND ".join(present)) if present else ""


def _n(value: Any) -> int:
    return int(value or 0)


def _totals(row: Sequence[Any]) -> UsageTotals:
    """The nine ``_SUMS`` columns, in order."""
    return UsageTotals(
        runs=_n(row[0]),
        failed_runs=_n(row[1]),
        unpriced_runs=_n(row[2]),
        input_tokens=_n(row[3]),
        output_tokens=_n(row[4]),
        cache_read_tokens=_n(row[5]),
        cache_write_tokens=_n(row[6]),
        total_tokens=_n(row[7]),
        cost=Decimal(str(row[8] or 0)),
    )


class UsageRepository:
    """Reads (under the caller's RLS user) and the rollup writes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- writes: the one rollup rule ---------------------------------------------------------

    def add_run_to_rollups(self, run: AgentRun) -> None:
        """Add a finished run (its tokens, cost, status) and its tool calls to the daily
        rollups, in the caller's transaction. Call exactly once per run, after its final
        status, tokens and cost are set and its tool calls are written (this flushes them)."""
        self.session.flush()
        self.session.execute(_ADD_RUNS, {"run_ids": [run.id], "from_day": None})

    def rebuild_rollups(
        self, *, from_day: date | None = None, user_ids: Sequence[uuid.UUID] | None = None
    ) -> None:
        """Recompute the rollups of the given users and/or local days from ``from_day`` on:
        delete those rollup rows, then add every finished run (and tool call) in scope with
        the same rule as a finished run. Needs a transaction that sees every affected row."""
        params: dict[str, object] = {"from_day": from_day}
        user_d = user_r = user_t = None
        day_d = day_r = day_t = None
        if user_ids is not None:
            params["user_ids"] = list(user_ids)
            user_d = "user_id = ANY(:user_ids)"
            user_r = "r.user_id = ANY(:user_ids)"
            user_t = "tc.user_id = ANY(:user_ids)"
        if from_day is not None:
            day_d = "day >= :from_day"
            # Every run or tool call on a local day from ``from_day`` on started (was made)
            # after this instant, whatever the time zone; the function keeps the exact days.
            day_r = "r.started_at >= CAST(:from_day AS date) - 2"
            day_t = "tc.created_at >= CAST(:from_day AS date) - 2"
        self.session.execute(text(f"DELETE FROM usage_daily {_where(user_d, day_d)}"), params)
        self.session.execute(text(f"DELETE FROM tool_usage_daily {_where(user_d, day_d)}"), params)
        finished = "r.status <> 'running'"
        runs = f"SELECT r.id FROM agent_runs r {_where(finished, user_r, day_r)}"
        if from_day is not None:
            # A run that started earlier may still have made tool calls in scope.
            runs += f" UNION SELECT tc.run_id FROM tool_calls tc {_where(user_t, day_t)}"
        self.session.execute(
            text(f"SELECT jarvis_usage_rollup_add(ARRAY({runs}), CAST(:from_day AS date))"),
            params,
        )

    def sees_every_row(self) -> bool:
        """Whether this transaction's role sees every user's rows (superuser or BYPASSRLS):
        the owner connection of the maintenance commands must."""
        return bool(
            self.session.scalar(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        )

    # -- reads -------------------------------------------------------------------------------

    def summary(
        self, start: date, end: date, *, user_id: uuid.UUID | None, models: Sequence[str] = ()
    ) -> UsageTotals:
        """Totals over local days ``start..end`` (inclusive); ``user_id=None``: all visible."""
        params: dict[str, object] = {"start": start, "end": end}
        conds = ["day BETWEEN :start AND :end"]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        if models:
            conds.append("model = ANY(:models)")
            params["models"] = list(models)
        row = self.session.execute(
            text(f"SELECT {_SUMS} FROM {_daily_table(user_id)} {_where(*conds)}"), params
        ).one()
        return _totals(tuple(row))

    def daily(self, start: date, end: date, *, user_id: uuid.UUID | None) -> list[DailyTotals]:
        """Per local day, provider and model (all models: the service filters and lists them)."""
        params: dict[str, object] = {"start": start, "end": end}
        conds = ["day BETWEEN :start AND :end"]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        if user_id is None:
            conds.append("runs > 0")  # a group emptied by a deletion or a rebuild
        rows = self.session.execute(
            text(
                f"SELECT day, provider, model, {_SUMS} FROM {_daily_table(user_id)} "
                f"{_where(*conds)} GROUP BY day, provider, model ORDER BY day, provider, model"
            ),
            params,
        )
        return [DailyTotals(r.day, r.provider, r.model, _totals(tuple(r)[3:])) for r in rows]

    def tools(self, start: date, end: date, *, user_id: uuid.UUID | None) -> list[ToolTotals]:
        """Per tool over local days ``start..end``, most called first."""
        params: dict[str, object] = {"start": start, "end": end}
        conds = ["day BETWEEN :start AND :end"]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        rows = self.session.execute(
            text(
                "SELECT tool_id, sum(calls) AS calls, sum(errors) AS errors, "
                "sum(denied) AS denied, sum(latency_count) AS latency_count, "
                "sum(latency_ms_sum) AS latency_ms_sum, max(latency_ms_max) AS latency_ms_max "
                f"FROM {'tool_usage_daily' if user_id else 'tool_usage_daily_all'} "
                f"{_where(*conds)} GROUP BY tool_id HAVING sum(calls) > 0 "
                "ORDER BY sum(calls) DESC, tool_id"
            ),
            params,
        )
        return [
            ToolTotals(
                tool_id=r.tool_id,
                calls=_n(r.calls),
                errors=_n(r.errors),
                denied=_n(r.denied),
                latency_count=_n(r.latency_count),
                latency_ms_sum=_n(r.latency_ms_sum),
                latency_ms_max=_n(r.latency_ms_max),
            )
            for r in rows
        ]

    def ranking(
        self, start: date, end: date, *, models: Sequence[str] = (), limit: int = 50
    ) -> list[UserTotals]:
        """Users by cost over the range (admins see everyone; RLS limits others to themselves)."""
        params: dict[str, object] = {"start": start, "end": end, "limit": limit}
        conds = ["day BETWEEN :start AND :end"]
        if models:
            conds.append("model = ANY(:models)")
            params["models"] = list(models)
        rows = self.session.execute(
            text(
                "SELECT t.user_id, u.email, u.display_name, t.runs, t.unpriced_runs, "
                "t.total_tokens, t.cost FROM ("
                "  SELECT user_id, sum(runs) AS runs, sum(unpriced_runs) AS unpriced_runs, "
                "  sum(total_tokens) AS total_tokens, sum(cost) AS cost "
                # without a model filter, one row per user and day (all models summed)
                f"  FROM {'usage_daily' if models else 'usage_user_daily'} {_where(*conds)} "
                "  GROUP BY user_id"
                ") t JOIN users u ON u.id = t.user_id "
                "ORDER BY t.cost DESC, t.runs DESC, u.email LIMIT :limit"
            ),
            params,
        )
        return [
            UserTotals(
                user_id=r.user_id,
                email=r.email,
                display_name=r.display_name,
                runs=_n(r.runs),
                unpriced_runs=_n(r.unpriced_runs),
                total_tokens=_n(r.total_tokens),
                cost=Decimal(r.cost or 0),
            )
            for r in rows
        ]

    def recent_runs(
        self,
        start: datetime,
        end: datetime,
        *,
        user_id: uuid.UUID | None,
        models: Sequence[str] = (),
        limit: int = 25,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs started in ``[start, end)``, newest first, one page."""
        params: dict[str, object] = {"start": start, "end": end, "limit": limit, "offset": offset}
        conds = ["r.started_at >= :start", "r.started_at < :end"]
        if user_id is not None:
            conds.append("r.user_id = :user_id")
            params["user_id"] = user_id
        if models:
            conds.append("r.model = ANY(:models)")
            params["models"] = list(models)
        # The page of runs first (an index scan that stops after ``limit`` rows), then their
        # users: joining first makes the planner sort every run of the range for an admin.
        rows = self.session.execute(
            text(
                "SELECT r.id, r.user_id, u.email, r.provider, r.model, r.status, "
                "r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, "
                "r.total_tokens, r.total_cost, r.unpriced, r.price_version, r.started_at, "
                "r.finished_at FROM (SELECT * FROM agent_runs r "
                f"{_where(*conds)} ORDER BY r.started_at DESC, r.id "
                "LIMIT :limit OFFSET :offset) r JOIN users u ON u.id = r.user_id "
                "ORDER BY r.started_at DESC, r.id"
            ),
            params,
        )
        return [
            RunRecord(
                id=r.id,
                user_id=r.user_id,
                email=r.email,
                provider=r.provider,
                model=r.model,
                status=r.status,
                input_tokens=_n(r.input_tokens),
                output_tokens=_n(r.output_tokens),
                cache_read_tokens=_n(r.cache_read_tokens),
                cache_write_tokens=_n(r.cache_write_tokens),
                total_tokens=_n(r.total_tokens),
                total_cost=None if r.total_cost is None else Decimal(r.total_cost),
                unpriced=bool(r.unpriced),
                price_version=r.price_version,
                started_at=r.started_at,
                finished_at=r.finished_at,
            )
            for r in rows
        ]

    def latency(
        self,
        start: datetime,
        end: datetime,
        *,
        user_id: uuid.UUID | None,
        models: Sequence[str] = (),
        sample: int = LATENCY_SAMPLE,
    ) -> list[LatencyRecord]:
        """p50 / p95 of the latency (start to end) of the latest ``sample`` completed runs
        started in ``[start, end)``, per provider and model, the most measured first (``runs``:
        how many were measured). Failed and stopped runs are left out: how fast an error comes
        back says nothing of a model's speed. A range with more runs is measured on its latest
        ones, read backwards from the ``started_at`` indexes: every run of 30 days for all
        users (430k) cost 650 ms to sort, for a figure the latest thousands tell as well."""
        params: dict[str, object] = {"start": start, "end": end, "sample": sample}
        conds = [
            "started_at >= :start",
            "started_at < :end",
            "status = 'completed'",
            "finished_at IS NOT NULL",
        ]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        if models:
            conds.append("model = ANY(:models)")
            params["models"] = list(models)
        ms = "extract(epoch FROM finished_at - started_at) * 1000"
        rows = self.session.execute(
            text(
                "SELECT provider, model, count(*) AS runs, "
                f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {ms}) AS p50, "
                f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {ms}) AS p95 "
                "FROM (SELECT provider, model, started_at, finished_at "
                f"FROM agent_runs {_where(*conds)} ORDER BY started_at DESC LIMIT :sample) s "
                "GROUP BY provider, model ORDER BY count(*) DESC, provider, model"
            ),
            params,
        )
        return [
            LatencyRecord(r.provider, r.model, _n(r.runs), float(r.p50), float(r.p95)) for r in rows
        ]

    def timezone_of(self, user_id: uuid.UUID) -> str | None:
        value = self.session.scalar(
            text("SELECT timezone FROM users WHERE id = :id"), {"id": user_id}
        )
        return None if value is None else str(value)

    def set_timezone(self, user_id: uuid.UUID, name: str) -> bool:
        result = self.session.execute(
            text("UPDATE users SET timezone = :tz WHERE id = :id"), {"tz": name, "id": user_id}
        )
        return bool(getattr(result, "rowcount", 0))

    def budget_of(self, user_id: uuid.UUID) -> Decimal | None:
        value = self.session.scalar(
            text("SELECT monthly_budget_usd FROM users WHERE id = :id"), {"id": user_id}
        )
        return None if value is None else Decimal(value)

    def set_budget(self, user_id: uuid.UUID, budget: Decimal | None) -> bool:
        result = self.session.execute(
            text("UPDATE users SET monthly_budget_usd = :b WHERE id = :id"),
            {"b": budget, "id": user_id},
        )
        return bool(getattr(result, "rowcount", 0))

    def users_with_budgets(self) -> list[UserBudgetRecord]:
        rows = self.session.execute(
            text(
                "SELECT id, email, display_name, role, monthly_budget_usd, timezone "
                "FROM users ORDER BY email"
            )
        )
        return [
            UserBudgetRecord(
                id=r.id,
                email=r.email,
                display_name=r.display_name,
                role=r.role,
                monthly_budget_usd=None
                if r.monthly_budget_usd is None
                else Decimal(r.monthly_budget_usd),
                timezone=r.timezone,
            )
            for r in rows
        ]
