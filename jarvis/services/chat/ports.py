"""What an agent run needs from the other capabilities, as ``Protocol``\\ s.

``build_services`` passes the real services (``ProviderFactory``, ``PermissionsService``,
``RateLimiter``, ``PricingService``, ``UsageService``, ``MemoryService``); they satisfy these
structurally, and tests may pass small fakes instead. The built-in tools' own dependencies are
typed in :mod:`jarvis.tools.ports` (the tools may not import services).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from jarvis.db.notify import Watch
from jarvis.identity import Principal
from jarvis.llm import base as llm
from jarvis.llm.factory import ProviderChoice
from jarvis.services.pricing import RunCost
from jarvis.tools.registry import ToolSpec


class ProviderSource(Protocol):
    """Chat model adapters (:class:`jarvis.llm.factory.ProviderFactory`)."""

    def for_user(
        self, principal: Principal, provider: str, *, deadline: float | None = None
    ) -> llm.LLMProvider:
        """The provider adapter for this user (keys decrypted only for the call); retries
        (``Retry-After`` included) never wait past ``deadline`` (``time.monotonic()``)."""
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

    def usable_tools(
        self, states: Mapping[str, bool], secret_providers: Collection[str]
    ) -> list[ToolSpec]:
        """The tools to offer given the user's stored permissions and secret providers."""
        ...


class PricingPort(Protocol):
    """Run costs (:class:`jarvis.services.pricing.PricingService`)."""

    def cost_for(self, provider: str, model: str, usage: llm.Usage, *, at: datetime) -> RunCost:
        """The cost of ``usage`` with the price version in force at ``at``."""
        ...

    def rates_for(
        self, provider: str, model: str, *, at: datetime
    ) -> tuple[Decimal, Decimal] | None:
        """USD per input token and per output token in force at ``at`` (None: unpriced)."""
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


class EventWatcher(Protocol):
    """Wake-ups for followers of a run's log (:class:`jarvis.db.notify.Notifier`)."""

    def watch(self, channel: str, key: str) -> AbstractContextManager[Watch]:
        """A flag set by each notification on ``channel`` for ``key``."""
        ...

    @property
    def listening(self) -> bool:
        """True while notifications can arrive (followers then poll less often)."""
        ...
