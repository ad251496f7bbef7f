"""Pure usage rules (no database): time zones, sums, the month projection, budget amounts.

Days are local days in a time zone: a user's own view uses their ``users.timezone``; an admin
looking at one user uses that user's zone; an admin looking at everyone sees each user's own
local days summed (rollups are per user) and recent runs cut at the admin's own day boundaries.
"""

from __future__ import annotations

import calendar
import functools
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jarvis.errors import ValidationError
from jarvis.services.usage.views import DailyUsage, DayUsage, ModelUsage, UsageSummary

WARNING_FRACTION = 0.8
MAX_RANGE_DAYS = 366
MAX_PAGE_SIZE = 200
MAX_BUDGET_USD = Decimal("1000000")


@functools.cache
def available_timezone_names() -> tuple[str, ...]:
    """IANA zone names a user may choose (sorted; "UTC" first)."""
    names = sorted(n for n in available_timezones() if "/" in n and not n.startswith("Etc/"))
    return ("UTC", *names)


def zone(name: str | None) -> ZoneInfo:
    """The zone called ``name``; UTC when unset or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        return ZoneInfo("UTC")


def summarise(rows: list[DailyUsage]) -> UsageSummary:
    """Totals of daily rows (the page's summary is the sum of what its chart shows)."""
    return UsageSummary(
        runs=sum(r.runs for r in rows),
        failed_runs=sum(r.failed_runs for r in rows),
        unpriced_runs=sum(r.unpriced_runs for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cache_read_tokens=sum(r.cache_read_tokens for r in rows),
        cache_write_tokens=sum(r.cache_write_tokens for r in rows),
        total_tokens=sum(r.total_tokens for r in rows),
        cost=sum((r.cost for r in rows), Decimal(0)),
    )


def per_model(rows: list[DailyUsage]) -> list[ModelUsage]:
    """Daily rows summed per (provider, model), the most expensive first."""
    groups: dict[tuple[str, str], list[DailyUsage]] = {}
    for r in rows:
        groups.setdefault((r.provider, r.model), []).append(r)
    models = []
    for (provider, model), group in groups.items():
        s = summarise(group)
        models.append(
            ModelUsage(
                provider=provider,
                model=model,
                runs=s.runs,
                failed_runs=s.failed_runs,
                unpriced_runs=s.unpriced_runs,
                input_tokens=s.input_tokens,
                output_tokens=s.output_tokens,
                cache_read_tokens=s.cache_read_tokens,
                cache_write_tokens=s.cache_write_tokens,
                total_tokens=s.total_tokens,
                cost=s.cost,
            )
        )
    return sorted(models, key=lambda m: (-m.cost, -m.total_tokens, m.provider, m.model))


def per_day(rows: list[DailyUsage], start: date, end: date) -> list[DayUsage]:
    """Every day ``start..end`` (oldest first) with its totals and rows; quiet days are zeros."""
    by_day: dict[date, list[DailyUsage]] = {}
    for r in rows:
        by_day.setdefault(r.day, []).append(r)
    days = []
    day = start
    while day <= end:
        found = sorted(by_day.get(day, []), key=lambda r: (r.provider, r.model))
        days.append(DayUsage(day=day, summary=summarise(found), models=found))
        day += timedelta(days=1)
    return days


def project_month(cost: Decimal, now_local: datetime) -> tuple[date, int, Decimal]:
    """(month start, days in month, projected month-end cost): month-to-date cost extrapolated
    linearly over the elapsed fraction of the month (at least one day, so the 1st is not wild)."""
    month_start = now_local.date().replace(day=1)
    days = calendar.monthrange(now_local.year, now_local.month)[1]
    start_dt = datetime.combine(month_start, time(), tzinfo=now_local.tzinfo)
    elapsed_days = max((now_local - start_dt).total_seconds() / 86400, 1.0)
    projected = (cost * Decimal(days) / Decimal(str(round(elapsed_days, 6)))).quantize(
        Decimal("0.01")
    )
    return month_start, days, max(projected, cost.quantize(Decimal("0.01")))


def budget_value(amount: Decimal | float | str) -> Decimal:
    """A budget amount entered by an admin: USD with cents, 0 to 1,000,000 (a typed ``$``
    and surrounding spaces are allowed)."""
    if isinstance(amount, str):
        amount = amount.strip().removeprefix("$").strip()
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise ValidationError("Enter an amount in US dollars.", field="budget") from exc
    if not value.is_finite() or value < 0 or value > MAX_BUDGET_USD:
        raise ValidationError("The budget must be between 0 and 1,000,000 USD.", field="budget")
    return value
