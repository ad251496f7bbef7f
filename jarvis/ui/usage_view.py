"""What the usage page says in words and which days its range presets mean (pure: no
Streamlit), so both are unit-tested.

* :func:`preset_range` the local days of "7 d", "30 d", "Month to date" and "90 d"
* :func:`month_sentence` this month so far against the budget, and the projection in words
"""

from __future__ import annotations

from datetime import date, timedelta

from jarvis.services.usage import BudgetStatus, MonthUsage
from jarvis.ui.formatting import long_date, percent, usd

PRESETS: tuple[str, ...] = ("7 d", "30 d", "Month to date", "90 d")
DEFAULT_PRESET = "30 d"


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The first and last local day (``today`` included) of a range preset."""
    if preset == "Month to date":
        return today.replace(day=1), today
    days = {"7 d": 7, "30 d": 30, "90 d": 90}.get(preset, 30)
    return today - timedelta(days=days - 1), today


def period_label(preset: str | None, start: date, end: date) -> str:
    """``the last 7 days``, ``this month so far`` or ``1 Nov – 30 Nov 2026``."""
    if preset == "Month to date":
        return "this month so far"
    if preset in PRESETS:
        return f"the last {preset.removesuffix(' d')} days"
    return f"{start:%d %b} – {end:%d %b %Y}"


def month_sentence(month: MonthUsage, budget: BudgetStatus | None) -> str:
    """This month so far and where this pace ends, e.g. "This month so far: $3.10 of your
    $20.00 budget (16 %). At this pace you will spend about $12.40 by 31 December, 62 % of
    your $20.00 budget." (without a budget: no budget part)."""
    last_day = month.month_start.replace(day=month.days_in_month)
    spent = usd(month.cost)
    if budget is None or budget.budget_usd <= 0:
        head = f"This month so far: {spent}."
        pace = f"At this pace you will spend about {usd(month.projected_cost)} by {long_date(last_day)}."
        return f"{head} {pace}"
    share = float(month.projected_cost / budget.budget_usd)
    head = (
        f"This month so far: {spent} of your {usd(budget.budget_usd)} budget "
        f"({percent(budget.fraction)})."
    )
    if month.runs == 0:
        return f"{head} Nothing spent yet this month."
    pace = (
        f"At this pace you will spend about {usd(month.projected_cost)} by "
        f"{long_date(last_day)}, {percent(share)} of your {usd(budget.budget_usd)} budget."
    )
    return f"{head} {pace}"
