"""What an agent run needs from the other capabilities, as ``Protocol``\\ s.

``build_services`` passes the real services (``ProviderFactory``, ``PermissionsService``,
``RateLimiter``, ``PricingService``, ``UsageService``, ``MemoryService``); they satisfy these
structurally, and tests may pass small fakes instead. The built-in tools' own dependencies are
typed in :mod:`jarvis.tools.ports` (the tools may not import services).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from jarvis.db.tables import AgentRun
from jarvis.db.uow import UnitOfWork
from jarvis.identity import Principal
from jarvis.llm import base as llm
from jarvis.llm.factory import ProviderChoice
from jarvis.services.pricing import RunCost
from jarvis.tools.registry import ToolSpec


class ProviderSource(Protocol):
    """Chat model adapters (:class:`jarvis.llm.factory.ProviderFactory`)."""

    def for_user(self, principal: Principal, provider: str) -> llm.LLMProvider:
        """The provider adapter for this user (keys decrypted only for the call)."""
        ...

    def usable_providers(self, principal: Principal) -> list[ProviderChoice]:
        """The providers (and their models) this user may pick; offline always."""
        ...


class PermissionsPort(Protocol):
    """The user's tool permissions (:class:`jarvis.services.permissions.PermissionsService`)."""

    def tools_for(self, principal: Principal) -> list[ToolSpec]:
        """The tools to offer the model (permitted, with their required secret present)."""
        ...

    def is_allowed(self, principal: Principal, tool_id: str) -> bool:
        """Whether the user allows ``tool_id`` right now (re-checked at each call)."""
        ...


class RateDecisionLike(Protocol):
    """The verdict on one counted event."""

    @property
    def allowed(self) -> bool: ...

    @property
    def retry_after(self) -> float: ...


class RateLimiterPort(Protocol):
    """Shared fixed-window counters (:class:`jarvis.security.rate_limits.RateLimiter`)."""

    def hit(self, key: str, limit: int, window_seconds: int) -> RateDecisionLike:
        """Count one event for ``key``; ``allowed`` is False over ``limit`` per window."""
        ...


class PricingPort(Protocol):
    """Run costs (:class:`jarvis.services.pricing.PricingService`)."""

    def cost_for(self, provider: str, model: str, usage: llm.Usage, *, at: datetime) -> RunCost:
        """The cost of ``usage`` with the price version in force at ``at``."""
        ...


class RunRecorderPort(Protocol):
    """Closes a run's books (today :class:`jarvis.services.usage.UsageService`)."""

    def on_run_finished(self, uow: UnitOfWork, run: AgentRun) -> RunCost:
        """Price a run that just ended and add it to the rollups, in ``uow``'s transaction."""
        ...


class BudgetStatusLike(Protocol):
    """Month-to-date spend against the user's monthly budget."""

    @property
    def budget_usd(self) -> Decimal: ...

    @property
    def spent_usd(self) -> Decimal: ...

    @property
    def fraction(self) -> float: ...

    @property
    def warning(self) -> bool: ...

    @property
    def exceeded(self) -> bool: ...


class BudgetPort(Protocol):
    """Monthly budgets (:class:`jarvis.services.usage.UsageService`)."""

    def budget_status(self, principal: Principal) -> BudgetStatusLike:
        """The user's spend this month against their budget (refuse when ``exceeded``)."""
        ...


class MemoryHitLike(Protocol):
    """One remembered fact offered to the model."""

    @property
    def content(self) -> str: ...


class MemoryPort(Protocol):
    """Long-term memory (:class:`jarvis.services.memory.MemoryService`)."""

    def search(
        self, principal: Principal, query: str, k: int = ..., *, min_score: float | None = ...
    ) -> Sequence[MemoryHitLike]:
        """The ``k`` best memories of this user for ``query`` scoring at least ``min_score``."""
        ...


class CancelFlag(Protocol):
    """Set from elsewhere (a Stop button, a closed stream) to cancel a run
    (:class:`threading.Event` is one)."""

    def is_set(self) -> bool: ...
