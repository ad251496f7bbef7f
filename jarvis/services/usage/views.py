"""What the usage service returns to pages, routes and the agent's ``usage_report`` tool."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """What the usage page asks for: local days ``start..end`` (inclusive), optional models;
    ``user_id`` (admins: another user) or ``everyone`` (admins: all users)."""

    start: date
    end: date
    models: tuple[str, ...] = ()
    user_id: uuid.UUID | None = None
    everyone: bool = False
    page: int = 0
    page_size: int = 25


@dataclass(frozen=True, slots=True)
class UsageSummary:
    runs: int = 0
    failed_runs: int = 0
    unpriced_runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    cost: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class DailyUsage:
    day: date
    provider: str
    model: str
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
class MonthUsage:
    month_start: date
    today: date
    days_in_month: int
    runs: int
    unpriced_runs: int
    cost: Decimal
    projected_cost: Decimal


@dataclass(frozen=True, slots=True)
class ToolUsage:
    tool_id: str
    calls: int
    errors: int
    denied: int
    avg_latency_ms: float | None
    max_latency_ms: int | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True, slots=True)
class ModelLatency:
    """How long one model's completed runs took over a range (start to end of each run)."""

    provider: str
    model: str
    runs: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class RunRow:
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
    cost: Decimal | None
    unpriced: bool
    price_version: int | None
    started_at: datetime  # in the view's time zone
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class RunsPage:
    rows: list[RunRow]
    page: int
    page_size: int
    has_more: bool


@dataclass(frozen=True, slots=True)
class UserRank:
    user_id: uuid.UUID
    email: str
    display_name: str
    runs: int
    unpriced_runs: int
    total_tokens: int
    cost: Decimal


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Month-to-date spend against the monthly budget. ``warning`` from 80 %; ``exceeded`` once
    spend reaches the budget (a budget of 0 blocks every run)."""

    budget_usd: Decimal
    spent_usd: Decimal
    fraction: float
    warning: bool
    exceeded: bool
    unpriced_runs: int = 0
    source: str = "default"  # "user" (override), "admin default", "default" (settings)


@dataclass(frozen=True, slots=True)
class UserBudget:
    user_id: uuid.UUID
    email: str
    display_name: str
    override_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class UserOption:
    user_id: uuid.UUID
    email: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything the usage page shows, from one service call (one transaction)."""

    query: UsageQuery
    timezone: str
    summary: UsageSummary
    daily: list[DailyUsage]
    available_models: list[str]
    month: MonthUsage
    tools: list[ToolUsage]
    runs: RunsPage
    ranking: list[UserRank] = field(default_factory=list)
    users: list[UserOption] = field(default_factory=list)
    budget: BudgetStatus | None = None
    #: p50 / p95 latency per model over the range (completed runs).
    latency: list[ModelLatency] = field(default_factory=list)
    #: Totals per model over the range (the most expensive first).
    models: list[ModelUsage] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.summary.runs == 0 and not self.runs.rows


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model's totals over a range (all its days)."""

    provider: str
    model: str
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
class DayUsage:
    """One local day: its totals and its rows per model (none on a day without runs)."""

    day: date
    summary: UsageSummary
    models: list[DailyUsage]


@dataclass(frozen=True, slots=True)
class UsageRange:
    """Totals, per model and per tool over a range of local days (the API's usage summary)."""

    query: UsageQuery
    timezone: str
    summary: UsageSummary
    models: list[ModelUsage]
    tools: list[ToolUsage]


@dataclass(frozen=True, slots=True)
class UsageSeries:
    """Every local day of a range, oldest first, days without runs included (as zeros)."""

    query: UsageQuery
    timezone: str
    days: list[DayUsage]


@dataclass(frozen=True, slots=True)
class MonthToDate:
    """The local month so far, its projection and (for one user) the budget it counts against."""

    timezone: str
    month: MonthUsage
    budget: BudgetStatus | None


@dataclass(frozen=True, slots=True)
class RunsInRange:
    """One page of the runs started in a range of local days, newest first."""

    query: UsageQuery
    timezone: str
    page: RunsPage


@dataclass
class SeedResult:
    """What ``jarvis demo seed`` wrote, and the demo login."""

    users: int = 0
    conversations: int = 0
    runs: int = 0
    messages: int = 0
    tool_calls: int = 0
    seconds: float = 0.0
    login_email: str = ""
    password: str = ""
    admin_created: bool = False
    user_ids: list[uuid.UUID] = field(default_factory=list)
    knowledge: dict[str, int] | None = None


# -- the agent's usage_report tool: a JSON object ------------------------------------------------


class ReportPeriod(TypedDict):
    start: str
    end: str
    timezone: str


class ReportTokens(TypedDict):
    input: int
    output: int
    cache_read: int
    cache_write: int
    total: int


class ReportModel(TypedDict):
    model: str
    runs: int
    tokens: int
    cost_usd: str


class ReportTool(TypedDict):
    tool: str
    calls: int
    errors: int


class ReportBudget(TypedDict):
    budget_usd: str
    spent_usd: str
    fraction: float
    warning: bool
    exceeded: bool


class UsageReport(TypedDict):
    """The user's own usage over recent days (JSON-serialisable: amounts are strings)."""

    period: ReportPeriod
    runs: int
    failed_runs: int
    unpriced_runs: int
    tokens: ReportTokens
    cost_usd: str
    by_model: list[ReportModel]
    top_tools: list[ReportTool]
    month_to_date_usd: str
    projected_month_usd: str
    budget: ReportBudget
