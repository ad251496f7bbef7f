"""Usage and cost analytics, budgets, and the per-run bookkeeping that keeps them current.

Every aggregate reads the daily rollups (``usage_daily``, ``tool_usage_daily``), kept current in
each run's own transaction by :meth:`UsageService.on_run_finished` — see PERFORMANCE.md and
``benchmarks/usage_bench.py`` for why (rollup vs covering index at 1M runs).

Days are local days in a time zone: a user's own view uses their ``users.timezone``; an admin
looking at one user uses that user's zone; an admin looking at everyone sees each user's own
local days summed (rollups are per user) and recent runs cut at the admin's own day boundaries.
"""

from __future__ import annotations

import calendar
import csv
import functools
import io
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from jarvis.clock import Clock
from jarvis.config import Settings
from jarvis.db.repositories.audit import AuditRepository
from jarvis.db.repositories.pricing import PricingRepository
from jarvis.db.repositories.usage import UsageRepository, rebuild_usage_rollup
from jarvis.db.repositories.users import AppSettingsRepository
from jarvis.db.tables import AgentRun
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import NotFoundError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.services.pricing import PricingService, RunCost

log = logging.getLogger(__name__)

DEFAULT_BUDGET_KEY = "default_monthly_budget_usd"
WARNING_FRACTION = 0.8
MAX_RANGE_DAYS = 366
MAX_PAGE_SIZE = 200


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

    @property
    def is_empty(self) -> bool:
        return self.summary.runs == 0 and not self.runs.rows


@functools.cache
def available_timezone_names() -> tuple[str, ...]:
    """IANA zone names a user may choose (sorted; "UTC" first)."""
    names = sorted(n for n in available_timezones() if "/" in n and not n.startswith("Etc/"))
    return ("UTC", *names)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _int(v: Any) -> int:
    return int(v or 0)


def _dec(v: Any) -> Decimal:
    return Decimal(v or 0)


def _summary(row: Any) -> UsageSummary:
    return UsageSummary(
        runs=_int(row.runs),
        failed_runs=_int(row.failed_runs),
        unpriced_runs=_int(row.unpriced_runs),
        input_tokens=_int(row.input_tokens),
        output_tokens=_int(row.output_tokens),
        cache_read_tokens=_int(row.cache_read_tokens),
        cache_write_tokens=_int(row.cache_write_tokens),
        total_tokens=_int(row.total_tokens),
        cost=_dec(row.cost),
    )


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


class UsageService:
    """Summaries, breakdowns, rankings and budgets; every method is one transaction."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, settings: Settings, pricing: PricingService
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings
        self._pricing = pricing

    # -- the run's bookkeeping (called by the chat engine) --------------------------------

    def on_run_finished(self, uow: UnitOfWork, run: AgentRun) -> RunCost:
        """Price a run that just ended and add it to the rollups, in the caller's transaction.

        Set the run's final ``status``, tokens and ``finished_at`` and write its tool calls
        first; this sets ``total_tokens``, ``total_cost``, ``price_version`` and ``unpriced``
        with the price in force at ``finished_at``. Call exactly once per run, then commit."""
        run.total_tokens = (
            (run.input_tokens or 0)
            + (run.output_tokens or 0)
            + (run.cache_read_tokens or 0)
            + (run.cache_write_tokens or 0)
        )
        if run.finished_at is None:
            run.finished_at = self._clock.now()
        # No autoflush: the run is written once, with its cost, by the rollup's flush.
        with uow.session.no_autoflush:
            cost = self._pricing.cost_in(
                PricingRepository(uow.session),
                run.provider,
                run.model,
                run.input_tokens or 0,
                run.output_tokens or 0,
                run.cache_read_tokens or 0,
                run.cache_write_tokens or 0,
                run.finished_at,
            )
        run.total_cost = cost.cost
        run.price_version = cost.price_version
        run.unpriced = cost.unpriced
        if run.started_at is None:
            run.started_at = run.finished_at
        UsageRepository(uow.session).record_run_finished(run)
        return cost

    def rebuild_rollups(self, principal: Principal) -> None:
        """Recompute the caller's own rollups from their runs (row-level security limits the
        statements to their rows). Call after the user's time zone changes: rollup days are
        local days, so they move with it."""
        with self._uow(principal) as uow:
            rebuild_usage_rollup(uow.session, user_ids=[principal.user_id])
            uow.commit()

    def timezone(self, principal: Principal) -> str:
        """The user's time zone (IANA name) for their usage days and times."""
        with self._uow(principal) as uow:
            return zone(UsageRepository(uow.session).timezone_of(principal.user_id)).key

    def set_timezone(self, principal: Principal, name: str) -> str:
        """Set the user's own time zone (an IANA name such as ``Europe/Paris``) and move their
        rollups to the new local days, in one transaction. Returns the stored name."""
        name = (name or "").strip()
        if name not in available_timezone_names():
            raise ValidationError(
                "Choose a time zone from the list (e.g. Europe/Paris).", field="timezone"
            )
        with self._uow(principal) as uow:
            repo = UsageRepository(uow.session)
            if not repo.set_timezone(principal.user_id, name):
                raise NotFoundError("No such user.")
            rebuild_usage_rollup(uow.session, user_ids=[principal.user_id])
            AuditRepository(uow.session).record(
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
        if query.end < query.start:
            raise ValidationError("The end date is before the start date.", field="end")
        if (query.end - query.start).days >= MAX_RANGE_DAYS:
            raise ValidationError("Choose a range of at most a year.", field="start")
        if query.page < 0 or not 1 <= query.page_size <= MAX_PAGE_SIZE:
            raise ValidationError("Invalid page.", field="page")

    def _tz(
        self, repo: UsageRepository, principal: Principal, target: uuid.UUID | None
    ) -> ZoneInfo:
        return zone(repo.timezone_of(target or principal.user_id))

    # -- reads ----------------------------------------------------------------------------

    def summary(self, principal: Principal, query: UsageQuery) -> UsageSummary:
        """Runs, tokens by type, cost and unpriced runs over the range."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            row = UsageRepository(uow.session).summary(
                query.start, query.end, user_id=target, models=query.models
            )
            return _summary(row)

    def daily(self, principal: Principal, query: UsageQuery) -> list[DailyUsage]:
        """Per local day and model (the stacked chart), filtered to ``query.models`` if given."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            rows = self._daily(UsageRepository(uow.session), query, target)
        return [r for r in rows if not query.models or r.model in query.models]

    @staticmethod
    def _daily(
        repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None
    ) -> list[DailyUsage]:
        return [
            DailyUsage(
                day=r.day,
                provider=r.provider,
                model=r.model,
                runs=_int(r.runs),
                failed_runs=_int(r.failed_runs),
                unpriced_runs=_int(r.unpriced_runs),
                input_tokens=_int(r.input_tokens),
                output_tokens=_int(r.output_tokens),
                cache_read_tokens=_int(r.cache_read_tokens),
                cache_write_tokens=_int(r.cache_write_tokens),
                total_tokens=_int(r.total_tokens),
                cost=_dec(r.cost),
            )
            for r in repo.daily(query.start, query.end, user_id=target)
        ]

    def current_month(
        self, principal: Principal, *, user_id: uuid.UUID | None = None, everyone: bool = False
    ) -> MonthUsage:
        """Month to date (local month) and a linear projection to the month's end."""
        today = self._clock.now().date()
        query = UsageQuery(start=today, end=today, user_id=user_id, everyone=everyone)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            repo = UsageRepository(uow.session)
            return self._month(repo, self._tz(repo, principal, target), target, ())

    def _month(
        self, repo: UsageRepository, tz: ZoneInfo, target: uuid.UUID | None, models: tuple[str, ...]
    ) -> MonthUsage:
        now_local = self._clock.now().astimezone(tz)
        month_start = now_local.date().replace(day=1)
        s = _summary(repo.summary(month_start, now_local.date(), user_id=target, models=models))
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

    def recent_runs(self, principal: Principal, query: UsageQuery) -> RunsPage:
        """One page of runs started in the range, newest first, times in the view's zone."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            repo = UsageRepository(uow.session)
            return self._runs(repo, query, target, self._tz(repo, principal, target))

    @staticmethod
    def _runs(
        repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None, tz: ZoneInfo
    ) -> RunsPage:
        start = datetime.combine(query.start, time(), tzinfo=tz)
        end = datetime.combine(query.end + timedelta(days=1), time(), tzinfo=tz)
        rows = repo.recent_runs(
            start,
            end,
            user_id=target,
            models=query.models,
            limit=query.page_size + 1,
            offset=query.page * query.page_size,
        )
        out = [
            RunRow(
                id=r.id,
                user_id=r.user_id,
                user_email=r.email,
                provider=r.provider,
                model=r.model,
                status=r.status,
                input_tokens=_int(r.input_tokens),
                output_tokens=_int(r.output_tokens),
                cache_read_tokens=_int(r.cache_read_tokens),
                cache_write_tokens=_int(r.cache_write_tokens),
                total_tokens=_int(r.total_tokens),
                cost=None if r.total_cost is None else Decimal(r.total_cost),
                unpriced=bool(r.unpriced),
                price_version=r.price_version,
                started_at=r.started_at.astimezone(tz),
                finished_at=r.finished_at.astimezone(tz) if r.finished_at else None,
            )
            for r in rows[: query.page_size]
        ]
        return RunsPage(
            rows=out,
            page=query.page,
            page_size=query.page_size,
            has_more=len(rows) > query.page_size,
        )

    def per_tool(self, principal: Principal, query: UsageQuery) -> list[ToolUsage]:
        """Calls, errors, denials and latency per tool over the range (all models)."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            return self._tools(UsageRepository(uow.session), query, target)

    @staticmethod
    def _tools(
        repo: UsageRepository, query: UsageQuery, target: uuid.UUID | None
    ) -> list[ToolUsage]:
        return [
            ToolUsage(
                tool_id=r.tool_id,
                calls=_int(r.calls),
                errors=_int(r.errors),
                denied=_int(r.denied),
                avg_latency_ms=(float(r.latency_ms_sum) / int(r.latency_count))
                if r.latency_count
                else None,
                max_latency_ms=int(r.latency_ms_max) if r.latency_count else None,
            )
            for r in repo.tools(query.start, query.end, user_id=target)
        ]

    def ranking(self, principal: Principal, query: UsageQuery, limit: int = 50) -> list[UserRank]:
        """Users ordered by cost over the range (admins only)."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        self._check(query)
        with self._uow(principal) as uow:
            return self._ranking(UsageRepository(uow.session), query, limit)

    @staticmethod
    def _ranking(repo: UsageRepository, query: UsageQuery, limit: int) -> list[UserRank]:
        return [
            UserRank(
                user_id=r.user_id,
                email=r.email,
                display_name=r.display_name,
                runs=_int(r.runs),
                unpriced_runs=_int(r.unpriced_runs),
                total_tokens=_int(r.total_tokens),
                cost=_dec(r.cost),
            )
            for r in repo.ranking(query.start, query.end, models=query.models, limit=limit)
        ]

    def dashboard(self, principal: Principal, query: UsageQuery) -> Dashboard:
        """Everything the usage page shows, in one transaction."""
        self._check(query)
        target = self._target(principal, query)
        with self._uow(principal) as uow:
            repo = UsageRepository(uow.session)
            tz = self._tz(repo, principal, target)
            all_daily = self._daily(repo, query, target)
            daily = [r for r in all_daily if not query.models or r.model in query.models]
            models = sorted({r.model for r in all_daily} | set(query.models))
            month = self._month(repo, tz, target, query.models)
            budget = None
            if target is not None:
                budget = self._budget(uow, repo, target, None if query.models else month)
            dash = Dashboard(
                query=query,
                timezone=tz.key,
                summary=summarise(daily),
                daily=daily,
                available_models=models,
                month=month,
                tools=self._tools(repo, query, target),
                runs=self._runs(repo, query, target, tz),
                ranking=self._ranking(repo, query, 50)
                if principal.is_admin and target is None
                else [],
                users=(
                    [
                        UserOption(user_id=u.id, email=u.email, display_name=u.display_name)
                        for u in repo.users_with_budgets()
                    ]
                    if principal.is_admin
                    else []
                ),
                budget=budget,
            )
        return dash

    # -- budgets --------------------------------------------------------------------------

    def default_budget(self, principal: Principal) -> Decimal:
        """The admin-set default monthly budget, else the configured one."""
        with self._uow(principal) as uow:
            return self._default_budget(uow)[0]

    def _default_budget(self, uow: UnitOfWork) -> tuple[Decimal, str]:
        value = AppSettingsRepository(uow.session).get(DEFAULT_BUDGET_KEY)
        if value is not None:
            try:
                return Decimal(str(value)), "admin default"
            except InvalidOperation:
                log.warning("ignoring an invalid %s app setting", DEFAULT_BUDGET_KEY)
        return Decimal(str(self._settings.default_monthly_budget_usd)), "default"

    def _budget(
        self,
        uow: UnitOfWork,
        repo: UsageRepository,
        user_id: uuid.UUID,
        month: MonthUsage | None = None,
    ) -> BudgetStatus:
        """``month``: this user's month to date (all models), when the caller has it already."""
        override = repo.budget_of(user_id)
        if override is not None:
            budget, source = Decimal(override), "user"
        else:
            budget, source = self._default_budget(uow)
        if month is None:
            month = self._month(repo, zone(repo.timezone_of(user_id)), user_id, ())
        spent = month.cost
        fraction = float(spent / budget) if budget > 0 else 1.0
        return BudgetStatus(
            budget_usd=budget,
            spent_usd=spent,
            fraction=fraction,
            warning=fraction >= WARNING_FRACTION,
            exceeded=spent >= budget,
            unpriced_runs=month.unpriced_runs,
            source=source,
        )

    def budget_status(self, principal: Principal, user_id: uuid.UUID | None = None) -> BudgetStatus:
        """Month-to-date spend (the user's local month) against their monthly budget: the
        user's override, else the admin default, else ``settings.default_monthly_budget_usd``.
        The chat refuses a run when ``exceeded`` and warns when ``warning``."""
        target = self._target(principal, UsageQuery(date.min, date.min, user_id=user_id))
        assert target is not None
        with self._uow(principal) as uow:
            return self._budget(uow, UsageRepository(uow.session), target)

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
                    override_usd=None
                    if r.monthly_budget_usd is None
                    else Decimal(r.monthly_budget_usd),
                )
                for r in UsageRepository(uow.session).users_with_budgets()
            ]

    def set_default_budget(self, principal: Principal, amount: Decimal | float | str) -> Decimal:
        """Set the instance-wide default monthly budget (admins only)."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        value = _budget_value(amount)
        with self._uow(principal) as uow:
            AppSettingsRepository(uow.session).set(DEFAULT_BUDGET_KEY, str(value))
            AuditRepository(uow.session).record(
                "budget.default_set", user_id=principal.user_id, details={"usd": str(value)}
            )
            uow.commit()
        return value

    def set_user_budget(
        self, principal: Principal, user_id: uuid.UUID, amount: Decimal | float | str | None
    ) -> Decimal | None:
        """Set (or with ``None`` clear) one user's monthly budget override (admins only)."""
        if not principal.is_admin:
            raise PermissionDeniedError()
        value = None if amount is None or amount == "" else _budget_value(amount)
        with self._uow(principal) as uow:
            if not UsageRepository(uow.session).set_budget(user_id, value):
                raise NotFoundError("No such user.")
            AuditRepository(uow.session).record(
                "budget.user_set",
                user_id=principal.user_id,
                target=str(user_id),
                details={"usd": None if value is None else str(value)},
            )
            uow.commit()
        return value

    # -- the agent's usage_report tool --------------------------------------------------------

    def usage_report(self, principal: Principal, days: int = 30) -> dict[str, Any]:
        """The user's own usage over the last ``days`` local days, JSON-serialisable."""
        days = max(1, min(int(days), MAX_RANGE_DAYS))
        with self._uow(principal) as uow:
            repo = UsageRepository(uow.session)
            tz = zone(repo.timezone_of(principal.user_id))
            today = self._clock.now().astimezone(tz).date()
            query = UsageQuery(start=today - timedelta(days=days - 1), end=today)
            daily = self._daily(repo, query, principal.user_id)
            tools = self._tools(repo, query, principal.user_id)
            month = self._month(repo, tz, principal.user_id, ())
            budget = self._budget(uow, repo, principal.user_id, month)
        s = summarise(daily)
        by_model: dict[str, dict[str, Any]] = {}
        for r in daily:
            m = by_model.setdefault(
                r.model, {"model": r.model, "runs": 0, "tokens": 0, "cost_usd": Decimal(0)}
            )
            m["runs"] += r.runs
            m["tokens"] += r.total_tokens
            m["cost_usd"] += r.cost
        return {
            "period": {
                "start": query.start.isoformat(),
                "end": query.end.isoformat(),
                "timezone": tz.key,
            },
            "runs": s.runs,
            "failed_runs": s.failed_runs,
            "unpriced_runs": s.unpriced_runs,
            "tokens": {
                "input": s.input_tokens,
                "output": s.output_tokens,
                "cache_read": s.cache_read_tokens,
                "cache_write": s.cache_write_tokens,
                "total": s.total_tokens,
            },
            "cost_usd": str(s.cost),
            "by_model": [
                {**m, "cost_usd": str(m["cost_usd"])}
                for m in sorted(by_model.values(), key=lambda m: m["cost_usd"], reverse=True)
            ],
            "top_tools": [
                {"tool": t.tool_id, "calls": t.calls, "errors": t.errors} for t in tools[:5]
            ],
            "month_to_date_usd": str(month.cost),
            "projected_month_usd": str(month.projected_cost),
            "budget": {
                "budget_usd": str(budget.budget_usd),
                "spent_usd": str(budget.spent_usd),
                "fraction": round(budget.fraction, 4),
                "warning": budget.warning,
                "exceeded": budget.exceeded,
            },
        }


def _budget_value(amount: Decimal | float | str) -> Decimal:
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise ValidationError("Enter an amount in US dollars.", field="budget") from exc
    if not value.is_finite() or value < 0 or value > Decimal("1000000"):
        raise ValidationError("The budget must be between 0 and 1,000,000 USD.", field="budget")
    return value


# -- CSV export of what the page shows --------------------------------------------------------

DAILY_CSV_COLUMNS = (
    "day",
    "provider",
    "model",
    "runs",
    "failed_runs",
    "unpriced_runs",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
)
RUNS_CSV_COLUMNS = (
    "started_at",
    "user",
    "provider",
    "model",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
    "unpriced",
    "price_version",
)


def daily_csv(rows: list[DailyUsage]) -> str:
    """The daily breakdown as CSV (unpriced cost stays a number: priced runs only)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(DAILY_CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.day.isoformat(),
                r.provider,
                r.model,
                r.runs,
                r.failed_runs,
                r.unpriced_runs,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.total_tokens,
                f"{r.cost:.6f}",
            ]
        )
    return buf.getvalue()


def runs_csv(rows: list[RunRow]) -> str:
    """The runs shown as CSV; an unpriced run's cost is empty, never 0."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RUNS_CSV_COLUMNS)
    for r in rows:
        w.writerow(
            [
                r.started_at.isoformat(),
                r.user_email,
                r.provider,
                r.model,
                r.status,
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.cache_write_tokens,
                r.total_tokens,
                "" if r.cost is None else f"{r.cost:.6f}",
                "yes" if r.unpriced else "no",
                "" if r.price_version is None else r.price_version,
            ]
        )
    return buf.getvalue()


def utc_day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
