"""The agent's ``usage_report`` tool result, built from the views (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from jarvis.services.usage.rules import summarise
from jarvis.services.usage.views import (
    BudgetStatus,
    DailyUsage,
    MonthUsage,
    ReportModel,
    ToolUsage,
    UsageReport,
)


def usage_report(
    start: date,
    end: date,
    timezone: str,
    daily: list[DailyUsage],
    tools: list[ToolUsage],
    month: MonthUsage,
    budget: BudgetStatus,
) -> UsageReport:
    """Totals, spend per model (most expensive first), the top five tools, month and budget."""
    s = summarise(daily)
    by_model: dict[str, tuple[int, int, Decimal]] = {}
    for r in daily:
        runs, tokens, cost = by_model.get(r.model, (0, 0, Decimal(0)))
        by_model[r.model] = (runs + r.runs, tokens + r.total_tokens, cost + r.cost)
    ranked = sorted(by_model.items(), key=lambda kv: kv[1][2], reverse=True)
    return UsageReport(
        period={"start": start.isoformat(), "end": end.isoformat(), "timezone": timezone},
        runs=s.runs,
        failed_runs=s.failed_runs,
        unpriced_runs=s.unpriced_runs,
        tokens={
            "input": s.input_tokens,
            "output": s.output_tokens,
            "cache_read": s.cache_read_tokens,
            "cache_write": s.cache_write_tokens,
            "total": s.total_tokens,
        },
        cost_usd=str(s.cost),
        by_model=[
            ReportModel(model=model, runs=runs, tokens=tokens, cost_usd=str(cost))
            for model, (runs, tokens, cost) in ranked
        ],
        top_tools=[{"tool": t.tool_id, "calls": t.calls, "errors": t.errors} for t in tools[:5]],
        month_to_date_usd=str(month.cost),
        projected_month_usd=str(month.projected_cost),
        budget={
            "budget_usd": str(budget.budget_usd),
            "spent_usd": str(budget.spent_usd),
            "fraction": round(budget.fraction, 4),
            "warning": budget.warning,
            "exceeded": budget.exceeded,
        },
    )
