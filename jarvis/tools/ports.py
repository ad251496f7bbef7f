"""What the built-in tools need from the app's capabilities (ports, as ``Protocol``\\ s).

The tools never import :mod:`jarvis.services` (an import contract): ``build_services`` hands them
the real services, which satisfy these protocols structurally; tests may hand them fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from jarvis.clock import Clock
from jarvis.identity import Principal


class MemoryHitLike(Protocol):
    """One memory search result."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def content(self) -> str: ...

    @property
    def score(self) -> float: ...

    @property
    def created_at(self) -> datetime | None: ...


class StoredMemory(Protocol):
    """A memory just stored."""

    @property
    def id(self) -> uuid.UUID: ...


class MemoryTools(Protocol):
    """``memory_search`` / ``memory_store`` (:class:`jarvis.services.memory.MemoryService`)."""

    def search(self, principal: Principal, query: str, k: int = ...) -> Sequence[MemoryHitLike]:
        """The ``k`` best memories of this user for ``query``."""
        ...

    def store(
        self,
        principal: Principal,
        content: str,
        *,
        source: str | None = ...,
        metadata: dict[str, Any] | None = ...,
    ) -> StoredMemory:
        """Embed and save one memory (``source``: the run that stored it)."""
        ...


class KnowledgeGraphTools(Protocol):
    """``kg_lookup`` / ``kg_add_fact``: results are dataclasses (or have ``to_dict``)."""

    def lookup(self, principal: Principal, query: str, limit: int = ...) -> Sequence[object]:
        """Entities matching ``query`` with their facts."""
        ...

    def add_fact(self, principal: Principal, subject: str, relation: str, object_: str) -> object:
        """Add ``subject -[relation]-> object`` (entities found by name or created)."""
        ...


class UsageTools(Protocol):
    """``usage_report``."""

    def usage_report(self, principal: Principal, days: int = ...) -> Mapping[str, Any]:
        """The user's own usage over the last ``days`` days, JSON-serialisable."""
        ...


class RevealedKey(Protocol):
    """A decrypted API key for one use."""

    @property
    def value(self) -> str: ...

    @property
    def base_url(self) -> str | None: ...


class SecretTools(Protocol):
    """``web_search`` reads the user's Tavily key."""

    def reveal(self, principal: Principal, provider: str, name: str | None = ...) -> RevealedKey:
        """Decrypt the user's key for ``provider`` (audited); ``NotFoundError`` without one."""
        ...


class ToolServices(Protocol):
    """Everything the built-in tools reach (``BuiltinToolServices`` in production)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def memory(self) -> MemoryTools: ...

    @property
    def knowledge_graph(self) -> KnowledgeGraphTools: ...

    @property
    def usage(self) -> UsageTools: ...

    @property
    def secrets(self) -> SecretTools: ...
