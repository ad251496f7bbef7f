"""Usage and cost (the seed's ``/usage``): a summary for a range of days, the daily series,
the current month with its budget and projection, and the runs.

Days are **local days in your time zone** (the Account page sets it); ``from`` / ``to`` are
``YYYY-MM-DD``, both included, at most a year apart; without them the range is the last 30
days up to today. ``model`` (repeatable) keeps only those models. Administrators may pass
``user_id`` (one user's usage) or ``everyone=true``; anyone else gets a 403 for another user.

Money: every USD amount is a decimal **string** with six decimals (``"0.012345"``), exact to
the micro-dollar run costs are rounded to; runs whose model has no price are counted in
``unpriced_runs`` (and their ``cost_usd`` is null), never as zero.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.money import Usd
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.errors import ValidationError
from jarvis.services.usage import (
    MAX_PAGE_SIZE,
    BudgetStatus,
    DailyUsage,
    DayUsage,
    ModelUsage,
    MonthToDate,
    RunRow,
    ToolUsage,
    UsageQuery,
    UsageSummary,
)

router = APIRouter(prefix="/usage", tags=["usage"], responses=PROBLEM_RESPONSES)

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: object) -> object:
    # pydantic would also take a Unix timestamp ("0": 1970-01-01) for a date.
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("Give a day as YYYY-MM-DD.")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
From = Annotated[
    IsoDay | None,
    Query(alias="from", description="First local day (YYYY-MM-DD); default: 29 days before `to`."),
]
To = Annotated[
    IsoDay | None, Query(description="Last local day, included; default: today in your time zone.")
]
Models = Annotated[
    list[str] | None, Query(alias="model", description="Only these models (repeat to add more).")
]
UserId = Annotated[uuid.UUID | None, Query(description="Administrators: this user's usage.")]
Everyone = Annotated[bool, Query(description="Administrators: every user's usage together.")]

#: The service's field names -> the parameters a client sent.
_PARAMS = {"start": "query.from", "end": "query.to", "page": "query.page", "models": "query.model"}


@contextmanager
def _as_parameters() -> Iterator[None]:
    """A service ValidationError names its own field; the problem names the query parameter."""
    try:
        yield
    except ValidationError as exc:
        if exc.field in _PARAMS:
            raise ValidationError(str(exc), field=_PARAMS[exc.field]) from exc
        raise


# -- models ------------------------------------------------------------------------------------


class Period(BaseModel):
    from_: date = Field(serialization_alias="from")
    to: date
    timezone: str = Field(description="The IANA time zone the days are in.")

    @classmethod
    def of(cls, query: UsageQuery, timezone: str) -> Period:
        return cls(from_=query.start, to=query.end, timezone=timezone)


class Totals(BaseModel):
    runs: int
    failed_runs: int
    unpriced_runs: int = Field(description="Runs of a model without a price: not in cost_usd.")
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: Usd

    @classmethod
    def of(cls, s: UsageSummary) -> Totals:
        return cls(
            runs=s.runs,
            failed_runs=s.failed_runs,
            unpriced_runs=s.unpriced_runs,
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            cache_read_tokens=s.cache_read_tokens,
            cache_write_tokens=s.cache_write_tokens,
            total_tokens=s.total_tokens,
            cost_usd=s.cost,
        )


class ModelTotals(Totals):
    provider: str
    model: str

    @classmethod
    def of_model(cls, m: ModelUsage | DailyUsage) -> ModelTotals:
        return cls(
            provider=m.provider,
            model=m.model,
            runs=m.runs,
            failed_runs=m.failed_runs,
            unpriced_runs=m.unpriced_runs,
            input_tokens=m.input_tokens,
            output_tokens=m.output_tokens,
            cache_read_tokens=m.cache_read_tokens,
            cache_write_tokens=m.cache_write_tokens,
            total_tokens=m.total_tokens,
            cost_usd=m.cost,
        )


class ToolTotals(BaseModel):
    tool_id: str
    calls: int
    errors: int
    denied: int
    error_rate: float
    avg_latency_ms: float | None
    max_latency_ms: int | None

    @classmethod
    def of(cls, t: ToolUsage) -> ToolTotals:
        return cls(
            tool_id=t.tool_id,
            calls=t.calls,
            errors=t.errors,
            denied=t.denied,
            error_rate=round(t.error_rate, 4),
            avg_latency_ms=round(t.avg_latency_ms, 1) if t.avg_latency_ms is not None else None,
            max_latency_ms=t.max_latency_ms,
        )


class UsageOverview(BaseModel):
    """Totals over the period, per model (most expensive first) and per tool (all models)."""

    period: Period
    totals: Totals
    models: list[ModelTotals]
    tools: list[ToolTotals]


class Day(Totals):
    day: date
    models: list[ModelTotals] = Field(description="The day's totals per model.")

    @classmethod
    def of_day(cls, d: DayUsage) -> Day:
        models = [ModelTotals.of_model(r) for r in d.models]
        return cls(**Totals.of(d.summary).model_dump(), day=d.day, models=models)


class DailySeries(BaseModel):
    """Every day of the period, oldest first; days without runs are zeros."""

    period: Period
    days: list[Day]


class Budget(BaseModel):
    budget_usd: Usd
    spent_usd: Usd
    fraction: float = Field(description="spent / budget (1.0 and over: runs are refused).")
    warning: bool = Field(description="80 % or more of the budget is spent.")
    exceeded: bool
    source: str = Field(description='"user" (your own budget), "admin default" or "default".')

    @classmethod
    def of(cls, b: BudgetStatus) -> Budget:
        return cls(
            budget_usd=b.budget_usd,
            spent_usd=b.spent_usd,
            fraction=round(b.fraction, 4),
            warning=b.warning,
            exceeded=b.exceeded,
            source=b.source,
        )


class CurrentMonth(BaseModel):
    """The local month so far and a linear projection of its cost to the month's end."""

    timezone: str
    month_start: date
    today: date
    days_in_month: int
    runs: int
    unpriced_runs: int
    cost_usd: Usd
    projected_cost_usd: Usd
    budget: Budget | None = Field(description="Your monthly budget (null for everyone's usage).")

    @classmethod
    def of(cls, m: MonthToDate) -> CurrentMonth:
        return cls(
            timezone=m.timezone,
            month_start=m.month.month_start,
            today=m.month.today,
            days_in_month=m.month.days_in_month,
            runs=m.month.runs,
            unpriced_runs=m.month.unpriced_runs,
            cost_usd=m.month.cost,
            projected_cost_usd=m.month.projected_cost,
            budget=Budget.of(m.budget) if m.budget is not None else None,
        )


class UsageRun(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    user_email: str
    provider: str
    model: str
    status: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: Usd | None = Field(description="null while running, or when the model is unpriced.")
    unpriced: bool
    price_version: int | None
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, r: RunRow) -> UsageRun:
        return cls(
            id=r.id,
            user_id=r.user_id,
            user_email=r.user_email,
            provider=r.provider,
            model=r.model,
            status=r.status,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cache_read_tokens=r.cache_read_tokens,
            cache_write_tokens=r.cache_write_tokens,
            total_tokens=r.total_tokens,
            cost_usd=r.cost,
            unpriced=r.unpriced,
            price_version=r.price_version,
            started_at=r.started_at,
            finished_at=r.finished_at,
        )


class UsageRuns(BaseModel):
    """One page of the runs started in the period, newest first."""

    period: Period
    page: int
    page_size: int
    has_more: bool
    runs: list[UsageRun]


# -- routes ------------------------------------------------------------------------------------


@router.get("", response_model=UsageOverview)
def usage_summary(
    user: CurrentUser,
    services: ServicesDep,
    from_: From = None,
    to: To = None,
    models: Models = None,
    user_id: UserId = None,
    everyone: Everyone = False,
) -> UsageOverview:
    """Runs, tokens and cost over the period, per model and per tool."""
    with _as_parameters():
        found = services.usage.usage_range(
            user, from_, to, models=tuple(models or ()), user_id=user_id, everyone=everyone
        )
    return UsageOverview(
        period=Period.of(found.query, found.timezone),
        totals=Totals.of(found.summary),
        models=[ModelTotals.of_model(m) for m in found.models],
        tools=[ToolTotals.of(t) for t in found.tools],
    )


@router.get("/daily", response_model=DailySeries)
def usage_daily(
    user: CurrentUser,
    services: ServicesDep,
    from_: From = None,
    to: To = None,
    models: Models = None,
    user_id: UserId = None,
    everyone: Everyone = False,
) -> DailySeries:
    """Each day of the period with its totals and its models (the stacked chart)."""
    with _as_parameters():
        found = services.usage.daily_series(
            user, from_, to, models=tuple(models or ()), user_id=user_id, everyone=everyone
        )
    return DailySeries(
        period=Period.of(found.query, found.timezone), days=[Day.of_day(d) for d in found.days]
    )


@router.get("/current-month", response_model=CurrentMonth)
def usage_current_month(
    user: CurrentUser, services: ServicesDep, user_id: UserId = None, everyone: Everyone = False
) -> CurrentMonth:
    """Month to date, its projection to the month's end, and the budget it counts against."""
    return CurrentMonth.of(services.usage.month_to_date(user, user_id=user_id, everyone=everyone))


@router.get("/runs", response_model=UsageRuns)
def usage_runs(
    user: CurrentUser,
    services: ServicesDep,
    from_: From = None,
    to: To = None,
    page: Annotated[int, Query(ge=0, le=1_000_000, description="0-based page number.")] = 0,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 25,
    models: Models = None,
    user_id: UserId = None,
    everyone: Everyone = False,
) -> UsageRuns:
    """The runs started in the period with their tokens, cost and status, newest first."""
    with _as_parameters():
        found = services.usage.runs_in_range(
            user,
            from_,
            to,
            page=page,
            page_size=page_size,
            models=tuple(models or ()),
            user_id=user_id,
            everyone=everyone,
        )
    return UsageRuns(
        period=Period.of(found.query, found.timezone),
        page=found.page.page,
        page_size=found.page.page_size,
        has_more=found.page.has_more,
        runs=[UsageRun.of(r) for r in found.page.rows],
    )
