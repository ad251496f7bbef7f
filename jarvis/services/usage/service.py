"""The usage service: summaries, breakdowns, rankings, budgets and the user's time zone.

Every aggregate reads the daily rollups (``usage_daily``, ``tool_usage_daily``), kept current
in each run's own transaction by :class:`jarvis.services.usage.recorder.RunRecorder`. Every
method is one transaction; the reads themselves are in :mod:`jarvis.services.usage.reads`.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from jarvis.clock import Clock
from jarvis.config import Settings
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import NotFoundError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.services.usage import budgets, reads
from jarvis.services.usage.report import usage_report
from jarvis.services.usage.rules import (
    MAX_PAGE_SIZE,
    MAX_RANGE_DAYS,
    available_timezone_names,
    budget_value,
    per_day,
    per_model,
    summarise,
    zone,
)
from jarvis.services.usage.views import (
    BudgetStatus,
    DailyUsage,
    Dashboard,
    ModelLatency,
    MonthToDate,
    MonthUsage,
    RunsInRange,
    RunsPage,
    ToolUsage,
    UsageQuery,
    UsageRange,
    UsageReport,
    UsageSeries,
    UsageSummary,
    UserBudget,
    UserRank,
)
from jarvis.validation import clamp_int, clean_line

#: How far the runs table pages, and how many models one query may filter on.
MAX_PAGE = 1_000_000
MAX_MODEL_FILTERS = 100
#: The range of the API's usage reads when none is given: the last 30 local days.
DEFAULT_RANGE_DAYS = 30
#: The days a usage query may name: a day's local midnight, a day before the first and after
#: the last must still be dates (``to=0001-01-01`` was an unhandled overflow, found by the API
#: fuzz test).
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def _day(value: date | None, field: str) -> date | None:
    if value is not None and not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValidationError(
            f"Choose a date between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}.",
            field=field,
        )
    return value


class UsageService:
    """Summaries, breakdowns, rankings and budgets; every method is one transaction."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings

    # -- the user's time zone -------------------------------------------------------------

    def rebuild_rollups(self, principal: Principal) -> None:
        """Recompute the caller's own rollups from their runs (row-level security limits the
        statements to their rows). Call after the user's time zone changes: rollup days are
        local days, so they move with it."""
        with self._uow(principal) as uow:
            uow.usage.rebuild_rollups(user_ids=[principal.user_id])
            uow.commit()

    def timezone(self, principal: Principal) -> str:
        """The user's time zone (IANA name) for their usage days and times."""
        with self._uow(principal) as uow:
            return zone(uow.usage.timezone_of(principal.user_id)).key

    def set_timezone(self, principal: Principal, name: str) -> str:
        """Set the user's own time zone (an IANA name such as ``Europe/Paris``) and move their
        rollups to the new local days, in one transaction. Returns the stored name."""
        name = (name or "").strip()
        if name not in available_timezone_names():
            raise ValidationError(
                "Choose a time zone from the list (e.g. Europe/Paris).", field="timezone"
            )
        with self._uow(principal) as uow:
            if not uow.usage.set_timezone(principal.user_id, name):
                raise NotFoundError("No such user.")
            uow.usage.rebuild_rollups(user_ids=[principal.user_id])
            uow.audit.record(
                "user.timezone_set", user_id=principal.user_id, details={"timezone": name}
            )
            uow.commit()
        return name

    # -- scope ----------------------------------------------------------------------------

    def _target(self, principal: Principal, query: UsageQuery) -> uuid.UUID | None:
        """The user whose usage is read, or None for everyone (admins only)."""
        if query.everyone:
            if not principal.is_admin:
                raise PermissionDeniedError("Only administrators can see everyone's usage.")
            return None
        if query.user_id is not None and query.user_id != principal.user_id:
            if not principal.is_admin:
                raise PermissionDeniedError("You can only see your own usage.")
            return query.user_id
        return principal.user_id

    @staticmethod
    def _check(query: UsageQuery) -> None:
        _day(query.start, "start")
        _day(query.end, "end")
        if query.end < query.start:
            raise ValidationError("The end date is before the start date.", field="end")
        if (query.end - query.start).days >= MAX_RANGE_DAYS:
            raise ValidationError("Choose a range of at most a year.", field="start")
        if not 0 <= query.page <= MAX_PAGE or not 1 <= query.page_size <= MAX_PAGE_SIZE:
            raise ValidationError("Invalid page.", field="page")
        if len(query.models) > MAX_MODEL_FILTERS:
            raise ValidationError(f"Choose at most {MAX_MODEL_FILTERS} models.", field="models")
        for model in query.models:
            clean_line(model, field="models", label="model", max_chars=200)

    @staticmethod
    def _tz(uow: UnitOfWork, principal: Principal, target: uuid.UUID | None) -> ZoneInfo:
        return zone(uow.usage.timezone_of(target or principal.user_id))

    # -- reads ----------------------------------------------------------------------------

    def summary(self, principal: Principal, query: UsageQuery) -> UsageSummary:
        """Runs, tokens by type, cost and unpriced runs over the range."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            totals = uow.usage.summary(query.start, query.end, user_id=target, models=query.models)
            return reads.summary_of(totals)

    def daily(self, principal: Principal, query: UsageQuery) -> list[DailyUsage]:
        """Per local day and model (the stacked chart), filtered to ``query.models`` if given."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            rows = reads.daily(uow.usage, query, target)
        return [r for r in rows if not query.models or r.model in query.models]

    def current_month(
        self, principal: Principal, *, user_id: uuid.UUID | None = None, everyone: bool = False
    ) -> MonthUsage:
        """Month to date (local month) and a linear projection to the month's end."""
        today = self._clock.now().date()
        query = UsageQuery(start=today, end=today, user_id=user_id, everyone=everyone)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            tz = self._tz(uow, principal, target)
            return reads.month(uow.usage, self._clock.now(), tz, target, ())

    def recent_runs(self, principal: Principal, query: UsageQuery) -> RunsPage:
        """One page of runs started in the range, newest first, times in the view's zone."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            return reads.runs_page(uow.usage, query, target, self._tz(uow, principal, target))

    def per_tool(self, principal: Principal, query: UsageQuery) -> list[ToolUsage]:
        """Calls, errors, denials and latency per tool over the range (all models)."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            return reads.tools(uow.usage, query, target)

    def ranking(self, principal: Principal, query: UsageQuery, limit: int = 50) -> list[UserRank]:
        """Users ordered by cost over the range (admins only)."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        self._check(query)
        with self._uow(principal) as uow:
            return reads.ranking(uow.usage, query, limit)

    def dashboard(self, principal: Principal, query: UsageQuery) -> Dashboard:
        """Everything the usage page shows, in one transaction."""
        self._check(query)
        target = self._target(principal, query)
        everyone = principal.is_admin and target is None
        with self._uow(principal) as uow:
            tz = self._tz(uow, principal, target)
            all_daily = reads.daily(uow.usage, query, target)
            daily = [r for r in all_daily if not query.models or r.model in query.models]
            month = reads.month(uow.usage, self._clock.now(), tz, target, query.models)
            budget = None
            if target is not None:
                budget = self._budget(uow, target, None if query.models else month)
            return Dashboard(
                query=query,
                timezone=tz.key,
                summary=summarise(daily),
                daily=daily,
                available_models=sorted({r.model for r in all_daily} | set(query.models)),
                month=month,
                tools=reads.tools(uow.usage, query, target),
                runs=reads.runs_page(uow.usage, query, target, tz),
                ranking=reads.ranking(uow.usage, query, 50) if everyone else [],
                users=reads.user_options(uow.usage) if principal.is_admin else [],
                budget=budget,
                latency=reads.latency(uow.usage, query, target, tz),
                models=per_model(daily),
            )

    def latency(self, principal: Principal, query: UsageQuery) -> list[ModelLatency]:
        """p50 / p95 latency per model of the completed runs started in the range."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            return reads.latency(uow.usage, query, target, self._tz(uow, principal, target))

    # -- the HTTP API's reads: a range of local days, the last 30 by default -----------------

    def _resolve(
        self,
        uow: UnitOfWork,
        principal: Principal,
        start: date | None,
        end: date | None,
        *,
        models: tuple[str, ...] = (),
        user_id: uuid.UUID | None = None,
        everyone: bool = False,
        page: int = 0,
        page_size: int = 25,
    ) -> tuple[UsageQuery, uuid.UUID | None, ZoneInfo]:
        """The query (a missing ``end`` is today, a missing ``start`` 30 days before ``end``,
        in the viewed user's time zone), whose usage it reads, and that zone."""
        target = self._target(principal, UsageQuery(date.min, date.min, (), user_id, everyone))
        tz = self._tz(uow, principal, target)
        start = _day(start, "start")
        end = _day(end, "end") or self._clock.now().astimezone(tz).date()
        start = start or max(EARLIEST_DAY, end - timedelta(days=DEFAULT_RANGE_DAYS - 1))
        query = UsageQuery(start, end, tuple(models), user_id, everyone, page, page_size)
        self._check(query)
        return query, target, tz

    def usage_range(
        self,
        principal: Principal,
        start: date | None = None,
        end: date | None = None,
        *,
        models: tuple[str, ...] = (),
        user_id: uuid.UUID | None = None,
        everyone: bool = False,
    ) -> UsageRange:
        """Totals, per model and per tool (tools: all models) over local days ``start..end``
        (both included; by default the last 30 days)."""
        with self._uow(principal) as uow:
            query, target, tz = self._resolve(
                uow, principal, start, end, models=models, user_id=user_id, everyone=everyone
            )
            rows = reads.daily(uow.usage, query, target)
            rows = [r for r in rows if not query.models or r.model in query.models]
            tools = reads.tools(uow.usage, query, target)
        return UsageRange(query, tz.key, summarise(rows), per_model(rows), tools)

    def daily_series(
        self,
        principal: Principal,
        start: date | None = None,
        end: date | None = None,
        *,
        models: tuple[str, ...] = (),
        user_id: uuid.UUID | None = None,
        everyone: bool = False,
    ) -> UsageSeries:
        """Every local day of ``start..end`` (by default the last 30 days) with its totals and
        its rows per model; days without runs are zeros."""
        with self._uow(principal) as uow:
            query, target, tz = self._resolve(
                uow, principal, start, end, models=models, user_id=user_id, everyone=everyone
            )
            rows = reads.daily(uow.usage, query, target)
        rows = [r for r in rows if not query.models or r.model in query.models]
        return UsageSeries(query, tz.key, per_day(rows, query.start, query.end))

    def month_to_date(
        self, principal: Principal, *, user_id: uuid.UUID | None = None, everyone: bool = False
    ) -> MonthToDate:
        """The local month so far with its linear projection, and the monthly budget it counts
        against (for one user; ``None`` for everyone's usage)."""
        target = self._target(principal, UsageQuery(date.min, date.min, (), user_id, everyone))
        with self._uow(principal) as uow:
            tz = self._tz(uow, principal, target)
            month = reads.month(uow.usage, self._clock.now(), tz, target, ())
            budget = None if target is None else self._budget(uow, target, month)
        return MonthToDate(tz.key, month, budget)

    def runs_in_range(
        self,
        principal: Principal,
        start: date | None = None,
        end: date | None = None,
        *,
        page: int = 0,
        page_size: int = 25,
        models: tuple[str, ...] = (),
        user_id: uuid.UUID | None = None,
        everyone: bool = False,
    ) -> RunsInRange:
        """One page of the runs started on local days ``start..end`` (by default the last 30
        days), newest first, with tokens, cost and status."""
        with self._uow(principal) as uow:
            query, target, tz = self._resolve(
                uow,
                principal,
                start,
                end,
                models=models,
                user_id=user_id,
                everyone=everyone,
                page=page,
                page_size=page_size,
            )
            return RunsInRange(query, tz.key, reads.runs_page(uow.usage, query, target, tz))

    # -- budgets --------------------------------------------------------------------------

    @property
    def _configured_budget(self) -> Decimal:
        return Decimal(str(self._settings.default_monthly_budget_usd))

    def _budget(
        self, uow: UnitOfWork, user_id: uuid.UUID, month: MonthUsage | None = None
    ) -> BudgetStatus:
        return budgets.budget_status(
            uow, user_id, configured=self._configured_budget, now=self._clock.now(), month=month
        )

    def default_budget(self, principal: Principal) -> Decimal:
        """The admin-set default monthly budget, else the configured one."""
        with self._uow(principal) as uow:
            return budgets.default_budget(uow, self._configured_budget)[0]

    def budget_status(self, principal: Principal, user_id: uuid.UUID | None = None) -> BudgetStatus:
        """Month-to-date spend (the user's local month) against their monthly budget: the
        user's override, else the admin default, else ``settings.default_monthly_budget_usd``.
        The chat refuses a run when ``exceeded`` and warns when ``warning``."""
        target = self._target(principal, UsageQuery(date.min, date.min, user_id=user_id))
        assert target is not None
        with self._uow(principal) as uow:
            return self._budget(uow, target)

    def list_budgets(self, principal: Principal) -> list[UserBudget]:
        """Every user with their override (admins only)."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        with self._uow(principal) as uow:
            return [
                UserBudget(
                    user_id=r.id,
                    email=r.email,
                    display_name=r.display_name,
                    override_usd=r.monthly_budget_usd,
                )
                for r in uow.usage.users_with_budgets()
            ]

    def set_default_budget(self, principal: Principal, amount: Decimal | float | str) -> Decimal:
        """Set the instance-wide default monthly budget (admins only)."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        value = budget_value(amount)
        with self._uow(principal) as uow:
            uow.app_settings.set(budgets.DEFAULT_BUDGET_KEY, str(value))
            uow.audit.record(
                "budget.default_set", user_id=principal.user_id, details={"usd": str(value)}
            )
            uow.commit()
        return value

    def set_user_budget(
        self, principal: Principal, user_id: uuid.UUID, amount: Decimal | float | str | None
    ) -> Decimal | None:
        """Set one user's monthly budget override (admins only). ``None`` or an empty text
        clears it: the user then has the default budget. (0 is a real budget that blocks every
        run, so "no override" is never spelled 0.)"""
        if not principal.is_admin:
            raise PermissionDeniedError()
        if isinstance(amount, str):
            amount = amount.strip()
        value = None if amount is None or amount == "" else budget_value(amount)
        with self._uow(principal) as uow:
            if not uow.usage.set_budget(user_id, value):
                raise NotFoundError("No such user.")
            uow.audit.record(
                "budget.user_set",
                user_id=principal.user_id,
                target=str(user_id),
                details={"usd": None if value is None else str(value)},
            )
            uow.commit()
        return value

    # -- the agent's usage_report tool ----------------------------------------------------

    def usage_report(self, principal: Principal, days: int = 30) -> UsageReport:
        """The user's own usage over the last ``days`` local days, JSON-serialisable."""
        days = clamp_int(days, 1, MAX_RANGE_DAYS, field="days")
        with self._uow(principal) as uow:
            tz = zone(uow.usage.timezone_of(principal.user_id))
            now = self._clock.now()
            today = now.astimezone(tz).date()
            query = UsageQuery(start=today - timedelta(days=days - 1), end=today)
            daily = reads.daily(uow.usage, query, principal.user_id)
            tools = reads.tools(uow.usage, query, principal.user_id)
            month = reads.month(uow.usage, now, tz, principal.user_id, ())
            budget = self._budget(uow, principal.user_id, month)
        return usage_report(query.start, query.end, tz.key, daily, tools, month, budget)
