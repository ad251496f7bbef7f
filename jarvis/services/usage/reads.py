"""The usage page's reads inside one transaction: repository records -> views.

Each function takes the transaction's :class:`UsageRepository`, so the service can compose a
whole dashboard in one unit of work.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from jarvis.db.repositories.usage import UsageRepository, UsageTotals
from jarvis.services.usage.rules import project_month
from jarvis.services.usage.views import (
    DailyUsage,
    ModelLatency,
    MonthUsage,
    RunRow,
    RunsPage,
    ToolUsage,
    UsageQuery,
    UsageSummary,
    UserOption,
    UserRank,
)


def summary_of(totals: UsageTotals) -> UsageSummary:
    return UsageSummary(
        runs=totals.runs,
        failed_runs=totals.failed_runs,
        unpriced_runs=totals.unpriced_runs,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        cache_read_tokens=totals.cache_read_tokens,
        cache_write_tokens=totals.cache_write_tokens,
        total_tokens=totals.total_tokens,
        cost=totals.cost,
    )


def daily(repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None) -> list[DailyUsage]:
    """Per local day and model, every model (callers filter to ``query.models``)."""
    return [
        DailyUsage(
            day=d.day,
            provider=d.provider,
            model=d.model,
            runs=d.totals.runs,
            failed_runs=d.totals.failed_runs,
            unpriced_runs=d.totals.unpriced_runs,
            input_tokens=d.totals.input_tokens,
            output_tokens=d.totals.output_tokens,
            cache_read_tokens=d.totals.cache_read_tokens,
            cache_write_tokens=d.totals.cache_write_tokens,
            total_tokens=d.totals.total_tokens,
            cost=d.totals.cost,
        )
        for d in repo.daily(query.start, query.end, user_id=target)
    ]


def month(
    repo: UsageRepository,
    now: datetime,
    tz: ZoneInfo,
    target: uuid.UUID | None,
    models: tuple[str, ...],
) -> MonthUsage:
    """Month to date (the local month of ``now`` in ``tz``) and its linear projection."""
    now_local = now.astimezone(tz)
    month_start = now_local.date().replace(day=1)
    s = repo.summary(month_start, now_local.date(), user_id=target, models=models)
    _, days, projected = project_month(s.cost, now_local)
    return MonthUsage(
        month_start=month_start,
        today=now_local.date(),
        days_in_month=days,
        runs=s.runs,
        unpriced_runs=s.unpriced_runs,
        cost=s.cost,
        projected_cost=projected,
    )


def runs_page(
    repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None, tz: ZoneInfo
) -> RunsPage:
    """One page of runs started on the query's local days in ``tz``, newest first."""
    start = datetime.combine(query.start, time(), tzinfo=tz)
    end = datetime.combine(query.end + timedelta(days=1), time(), tzinfo=tz)
    records = repo.recent_runs(
        start,
        end,
        user_id=target,
        models=query.models,
        limit=query.page_size + 1,
        offset=query.page * query.page_size,
    )
    rows = [
        RunRow(
            id=r.id,
            user_id=r.user_id,
            user_email=r.email,
            provider=r.provider,
            model=r.model,
            status=r.status,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cache_read_tokens=r.cache_read_tokens,
            cache_write_tokens=r.cache_write_tokens,
            total_tokens=r.total_tokens,
            cost=r.total_cost,
            unpriced=r.unpriced,
            price_version=r.price_version,
            started_at=r.started_at.astimezone(tz),
            finished_at=r.finished_at.astimezone(tz) if r.finished_at else None,
        )
        for r in records[: query.page_size]
    ]
    return RunsPage(
        rows=rows,
        page=query.page,
        page_size=query.page_size,
        has_more=len(records) > query.page_size,
    )


def latency(
    repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None, tz: ZoneInfo
) -> list[ModelLatency]:
    """p50 / p95 latency per model of the completed runs started on the query's local days."""
    start = datetime.combine(query.start, time(), tzinfo=tz)
    end = datetime.combine(query.end + timedelta(days=1), time(), tzinfo=tz)
    return [
        ModelLatency(r.provider, r.model, r.runs, r.p50_ms, r.p95_ms)
        for r in repo.latency(start, end, user_id=target, models=query.models)
    ]


def tools(repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None) -> list[ToolUsage]:
    """Calls, errors, denials and latency per tool over the range (all models)."""
    return [
        ToolUsage(
            tool_id=t.tool_id,
            calls=t.calls,
            errors=t.errors,
            denied=t.denied,
            avg_latency_ms=t.latency_ms_sum / t.latency_count if t.latency_count else None,
            max_latency_ms=t.latency_ms_max if t.latency_count else None,
        )
        for t in repo.tools(query.start, query.end, user_id=target)
    ]


def ranking(repo: UsageRepository, query: UsageQuery, limit: int) -> list[UserRank]:
    """Users by cost over the range (all users for an admin)."""
    return [
        UserRank(
            user_id=u.user_id,
            email=u.email,
            display_name=u.display_name,
            runs=u.runs,
            unpriced_runs=u.unpriced_runs,
            total_tokens=u.total_tokens,
            cost=u.cost,
        )
        for u in repo.ranking(query.start, query.end, models=query.models, limit=limit)
    ]


def user_options(repo: UsageRepository) -> list[UserOption]:
    """Every user an admin may pick on the page."""
    return [
        UserOption(user_id=u.id, email=u.email, display_name=u.display_name)
        for u in repo.users_with_budgets()
    ]
