"""Usage and cost analytics, budgets, and the per-run bookkeeping that keeps them current.

* ``views``       dataclasses returned to pages and routes (UsageQuery, Dashboard, UsageRange, ...)
* ``service``     :class:`UsageService`: dashboards, breakdowns, budgets, the user's time zone
* ``reads``       the dashboard's reads inside one transaction (records -> views)
* ``budgets``     which budget applies and how much of it is spent
* ``recorder``    :class:`RunRecorder`: prices a finished run, keeps the rollups current
* ``maintenance`` :class:`UsageMaintenance`: reprice, rebuild, seed prices, demo data (owner)
* ``export``      CSV of what the page shows; ``report`` the agent's usage_report tool result
* ``rules``       pure helpers: time zones, sums, the month projection, budget amounts
"""

from jarvis.services.usage.export import DAILY_CSV_COLUMNS, RUNS_CSV_COLUMNS, daily_csv, runs_csv
from jarvis.services.usage.maintenance import UsageMaintenance, reprice
from jarvis.services.usage.recorder import RunRecorder
from jarvis.services.usage.rules import (
    MAX_PAGE_SIZE,
    MAX_RANGE_DAYS,
    WARNING_FRACTION,
    available_timezone_names,
    budget_value,
    project_month,
    summarise,
    zone,
)
from jarvis.services.usage.service import UsageService
from jarvis.services.usage.views import (
    BudgetStatus,
    DailyUsage,
    Dashboard,
    DayUsage,
    ModelLatency,
    ModelUsage,
    MonthToDate,
    MonthUsage,
    RunRow,
    RunsInRange,
    RunsPage,
    SeedResult,
    ToolUsage,
    UsageQuery,
    UsageRange,
    UsageReport,
    UsageSeries,
    UsageSummary,
    UserBudget,
    UserOption,
    UserRank,
)

__all__ = [
    "DAILY_CSV_COLUMNS",
    "MAX_PAGE_SIZE",
    "MAX_RANGE_DAYS",
    "RUNS_CSV_COLUMNS",
    "WARNING_FRACTION",
    "BudgetStatus",
    "DailyUsage",
    "Dashboard",
    "DayUsage",
    "ModelLatency",
    "ModelUsage",
    "MonthToDate",
    "MonthUsage",
    "RunRecorder",
    "RunRow",
    "RunsInRange",
    "RunsPage",
    "SeedResult",
    "ToolUsage",
    "UsageMaintenance",
    "UsageQuery",
    "UsageRange",
    "UsageReport",
    "UsageSeries",
    "UsageService",
    "UsageSummary",
    "UserBudget",
    "UserOption",
    "UserRank",
    "available_timezone_names",
    "budget_value",
    "daily_csv",
    "project_month",
    "reprice",
    "runs_csv",
    "summarise",
    "zone",
]
