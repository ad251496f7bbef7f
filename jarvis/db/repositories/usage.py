"""Usage analytics SQL: the daily rollups (kept current per run) and the recent-runs list.

Designed for ~1M runs (see PERFORMANCE.md and benchmarks/usage_bench.py): every dashboard
aggregate reads ``usage_daily`` / ``tool_usage_daily`` (one row per user, local day, model or
tool) instead of ``agent_runs``; only the paged recent-runs list touches ``agent_runs``, through
``(user_id, started_at)`` or, for everyone, ``(started_at)``. Row-level security applies: a user
sees their own rows, an admin everyone's (``*_admin_read`` policies).

Rollup days are the *user's* local day (``users.timezone``) of the run's start.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.orm import Session

from jarvis.db.tables import AgentRun

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

_RECORD_RUN = """
INSERT INTO usage_daily AS d (user_id, day, provider, model, runs, failed_runs, unpriced_runs,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens, cost)
SELECT u.id, (CAST(:started_at AS timestamptz) AT TIME ZONE u.timezone)::date, :provider, :model,
       1, :failed, :unpriced, :input_tokens, :output_tokens, :cache_read_tokens,
       :cache_write_tokens, :total_tokens, :cost
FROM users u WHERE u.id = :user_id
ON CONFLICT (user_id, day, provider, model) DO UPDATE SET
    runs = d.runs + excluded.runs,
    failed_runs = d.failed_runs + excluded.failed_runs,
    unpriced_runs = d.unpriced_runs + excluded.unpriced_runs,
    input_tokens = d.input_tokens + excluded.input_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
    cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
    total_tokens = d.total_tokens + excluded.total_tokens,
    cost = d.cost + excluded.cost
"""

_TOOL_AGG = """
SELECT tc.user_id, (tc.created_at AT TIME ZONE u.timezone)::date AS day, tc.tool_id,
       count(*) AS calls,
       count(*) FILTER (WHERE tc.status = 'error') AS errors,
       count(*) FILTER (WHERE tc.status = 'denied') AS denied,
       count(tc.latency_ms) AS latency_count,
       coalesce(sum(tc.latency_ms), 0) AS latency_ms_sum,
       coalesce(max(tc.latency_ms), 0) AS latency_ms_max
FROM tool_calls tc JOIN users u ON u.id = tc.user_id
"""

_TOOL_COLUMNS = (
    "(user_id, day, tool_id, calls, errors, denied, latency_count, latency_ms_sum, latency_ms_max)"
)

_RECORD_TOOLS = f"""
INSERT INTO tool_usage_daily AS d {_TOOL_COLUMNS}
{_TOOL_AGG}
WHERE tc.run_id = :run_id
GROUP BY 1, 2, 3
ON CONFLICT (user_id, day, tool_id) DO UPDATE SET
    calls = d.calls + excluded.calls,
    errors = d.errors + excluded.errors,
    denied = d.denied + excluded.denied,
    latency_count = d.latency_count + excluded.latency_count,
    latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
    latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max)
"""

_RUN_LOCAL_DAY = "(r.started_at AT TIME ZONE u.timezone)::date"


def _where(*conds: str | None) -> str:
    present = [c for c in conds if c]
    return ("WHERE " + " AND ".join(present)) if present else ""


def rebuild_usage_rollup(
    conn: Connection | Session,
    *,
    from_day: date | None = None,
    user_ids: Sequence[uuid.UUID] | None = None,
    tools: bool = True,
) -> None:
    """Recompute the rollups from ``agent_runs`` / ``tool_calls`` (one ``INSERT ... SELECT ...
    GROUP BY`` each) for the given users and/or local days from ``from_day`` on. Run by the demo
    seed after its COPY and by reprice, on a connection that sees every affected row."""
    params: dict[str, Any] = {}
    user_cond_d = user_cond_r = user_cond_t = None
    day_cond_d = day_cond_r = day_cond_t = None
    if user_ids is not None:
        params["user_ids"] = list(user_ids)
        user_cond_d = "user_id = ANY(:user_ids)"
        user_cond_r = "r.user_id = ANY(:user_ids)"
        user_cond_t = "tc.user_id = ANY(:user_ids)"
    if from_day is not None:
        params["from_day"] = from_day
        day_cond_d = "day >= :from_day"
        # Runs are filtered by local day; the timestamp bound (a day earlier, wider than any
        # time zone offset) only lets the index narrow the scan.
        day_cond_r = (
            f"{_RUN_LOCAL_DAY} >= :from_day AND r.started_at >= CAST(:from_day AS date) - 2"
        )
        day_cond_t = (
            "(tc.created_at AT TIME ZONE u.timezone)::date >= :from_day "
            "AND tc.created_at >= CAST(:from_day AS date) - 2"
        )
    conn.execute(text(f"DELETE FROM usage_daily {_where(user_cond_d, day_cond_d)}"), params)
    conn.execute(
        text(
            f"""
            INSERT INTO usage_daily (user_id, day, provider, model, runs, failed_runs,
                unpriced_runs, input_tokens, output_tokens, cache_read_tokens,
                cache_write_tokens, total_tokens, cost)
            SELECT r.user_id, {_RUN_LOCAL_DAY}, r.provider, r.model, count(*),
                   count(*) FILTER (WHERE r.status = 'failed'),
                   count(*) FILTER (WHERE r.unpriced),
                   sum(r.input_tokens), sum(r.output_tokens), sum(r.cache_read_tokens),
                   sum(r.cache_write_tokens), sum(r.total_tokens), coalesce(sum(r.total_cost), 0)
            FROM agent_runs r JOIN users u ON u.id = r.user_id
            {_where("r.status <> 'running'", user_cond_r, day_cond_r)}
            GROUP BY 1, 2, 3, 4
            """
        ),
        params,
    )
    if not tools:
        return
    conn.execute(text(f"DELETE FROM tool_usage_daily {_where(user_cond_d, day_cond_d)}"), params)
    conn.execute(
        text(
            f"""
            INSERT INTO tool_usage_daily {_TOOL_COLUMNS}
            {_TOOL_AGG}
            JOIN agent_runs r ON r.id = tc.run_id
            {_where("r.status <> 'running'", user_cond_t, day_cond_t)}
            GROUP BY 1, 2, 3
            """
        ),
        params,
    )


class UsageRepository:
    """Reads (under the caller's RLS user) and the per-run rollup update."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- writes ------------------------------------------------------------------------------

    def record_run_finished(self, run: AgentRun) -> None:
        """Add a finished run (its tokens, cost, status) and its tool calls to the daily
        rollups, in the caller's transaction. Call exactly once per run, after its final
        status, tokens and cost are set and its tool calls are written."""
        self.session.flush()
        total = run.total_tokens or (
            (run.input_tokens or 0)
            + (run.output_tokens or 0)
            + (run.cache_read_tokens or 0)
            + (run.cache_write_tokens or 0)
        )
        self.session.execute(
            text(_RECORD_RUN),
            {
                "user_id": run.user_id,
                "started_at": run.started_at,
                "provider": run.provider,
                "model": run.model,
                "failed": 1 if run.status == "failed" else 0,
                "unpriced": 1 if run.unpriced else 0,
                "input_tokens": run.input_tokens or 0,
                "output_tokens": run.output_tokens or 0,
                "cache_read_tokens": run.cache_read_tokens or 0,
                "cache_write_tokens": run.cache_write_tokens or 0,
                "total_tokens": total,
                "cost": run.total_cost if run.total_cost is not None else Decimal(0),
            },
        )
        self.session.execute(text(_RECORD_TOOLS), {"run_id": run.id})

    # -- reads -------------------------------------------------------------------------------

    def summary(
        self, start: date, end: date, *, user_id: uuid.UUID | None, models: Sequence[str] = ()
    ) -> Row[Any]:
        """Totals over local days ``start..end`` (inclusive); ``user_id=None``: all visible."""
        params: dict[str, Any] = {"start": start, "end": end}
        conds = ["day BETWEEN :start AND :end"]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        if models:
            conds.append("model = ANY(:models)")
            params["models"] = list(models)
        return self.session.execute(
            text(f"SELECT {_SUMS} FROM usage_daily {_where(*conds)}"), params
        ).one()

    def daily(self, start: date, end: date, *, user_id: uuid.UUID | None) -> list[Row[Any]]:
        """Per local day, provider and model (all models: the service filters and lists them)."""
        params: dict[str, Any] = {"start": start, "end": end}
        conds = ["day BETWEEN :start AND :end"]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        return list(
            self.session.execute(
                text(
                    f"SELECT day, provider, model, {_SUMS} FROM usage_daily {_where(*conds)} "
                    "GROUP BY day, provider, model ORDER BY day, provider, model"
                ),
                params,
            )
        )

    def tools(self, start: date, end: date, *, user_id: uuid.UUID | None) -> list[Row[Any]]:
        params: dict[str, Any] = {"start": start, "end": end}
        conds = ["day BETWEEN :start AND :end"]
        if user_id is not None:
            conds.append("user_id = :user_id")
            params["user_id"] = user_id
        return list(
            self.session.execute(
                text(
                    "SELECT tool_id, sum(calls) AS calls, sum(errors) AS errors, "
                    "sum(denied) AS denied, sum(latency_count) AS latency_count, "
                    "sum(latency_ms_sum) AS latency_ms_sum, max(latency_ms_max) AS latency_ms_max "
                    f"FROM tool_usage_daily {_where(*conds)} "
                    "GROUP BY tool_id ORDER BY sum(calls) DESC, tool_id"
                ),
                params,
            )
        )

    def ranking(
        self, start: date, end: date, *, models: Sequence[str] = (), limit: int = 50
    ) -> list[Row[Any]]:
        """Users by cost over the range (admins see everyone; RLS limits others to themselves)."""
        params: dict[str, Any] = {"start": start, "end": end, "limit": limit}
        conds = ["day BETWEEN :start AND :end"]
        if models:
            conds.append("model = ANY(:models)")
            params["models"] = list(models)
        return list(
            self.session.execute(
                text(
                    "SELECT t.user_id, u.email, u.display_name, t.runs, t.unpriced_runs, "
                    "t.total_tokens, t.cost FROM ("
                    "  SELECT user_id, sum(runs) AS runs, sum(unpriced_runs) AS unpriced_runs, "
                    "  sum(total_tokens) AS total_tokens, sum(cost) AS cost "
                    f"  FROM usage_daily {_where(*conds)} GROUP BY user_id"
                    ") t JOIN users u ON u.id = t.user_id "
                    "ORDER BY t.cost DESC, t.runs DESC, u.email LIMIT :limit"
                ),
                params,
            )
        )

    def recent_runs(
        self,
        start: datetime,
        end: datetime,
        *,
        user_id: uuid.UUID | None,
        models: Sequence[str] = (),
        limit: int = 25,
        offset: int = 0,
    ) -> list[Row[Any]]:
        """Runs started in ``[start, end)``, newest first, one page."""
        params: dict[str, Any] = {"start": start, "end": end, "limit": limit, "offset": offset}
        conds = ["r.started_at >= :start", "r.started_at < :end"]
        if user_id is not None:
            conds.append("r.user_id = :user_id")
            params["user_id"] = user_id
        if models:
            conds.append("r.model = ANY(:models)")
            params["models"] = list(models)
        # The page of runs first (an index scan that stops after ``limit`` rows), then their
        # users: joining first makes the planner sort every run of the range for an admin.
        return list(
            self.session.execute(
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
        )

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

    def users_with_budgets(self) -> list[Row[Any]]:
        return list(
            self.session.execute(
                text(
                    "SELECT id, email, display_name, role, monthly_budget_usd, timezone "
                    "FROM users ORDER BY email"
                )
            )
        )


def record_run_finished(session: Session, run: AgentRun) -> None:
    """``UsageRepository(session).record_run_finished(run)`` as a plain function (the shape the
    orchestrator's ``record_usage`` hook takes)."""
    UsageRepository(session).record_run_finished(run)
