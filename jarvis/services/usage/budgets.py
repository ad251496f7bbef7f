"""Monthly budgets inside one transaction: which budget applies to a user and how much of it
is spent (the user's override, else the admin default, else the configured default)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation

from jarvis.db.uow import UnitOfWork
from jarvis.services.usage import reads
from jarvis.services.usage.rules import WARNING_FRACTION, zone
from jarvis.services.usage.views import BudgetStatus, MonthUsage

log = logging.getLogger(__name__)

DEFAULT_BUDGET_KEY = "default_monthly_budget_usd"


def default_budget(uow: UnitOfWork, configured: Decimal) -> tuple[Decimal, str]:
    """The admin-set default monthly budget, else ``configured``; and which one it is."""
    value = uow.app_settings.get(DEFAULT_BUDGET_KEY)
    if value is not None:
        try:
            return Decimal(str(value)), "admin default"
        except InvalidOperation:
            log.warning("ignoring an invalid %s app setting", DEFAULT_BUDGET_KEY)
    return configured, "default"


def budget_status(
    uow: UnitOfWork,
    user_id: uuid.UUID,
    *,
    configured: Decimal,
    now: datetime,
    month: MonthUsage | None = None,
) -> BudgetStatus:
    """``user_id``'s month-to-date spend (their local month) against their budget.
    ``month``: that user's month to date over all models, when the caller has it already."""
    override = uow.usage.budget_of(user_id)
    if override is not None:
        budget, source = override, "user"
    else:
        budget, source = default_budget(uow, configured)
    if month is None:
        tz = zone(uow.usage.timezone_of(user_id))
        month = reads.month(uow.usage, now, tz, user_id, ())
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
