"""Is the database reachable, migrated and protected? (Shown on the home page.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from jarvis.db.repositories.health import ServerInfo
from jarvis.errors import DatabaseError, DatabaseUnavailableError


class ServerProbePort(Protocol):
    def read(self) -> ServerInfo:
        """The server's details (raises :class:`DatabaseError` when unreachable)."""
        ...


@dataclass(frozen=True)
class Readiness:
    """May this process take traffic? The database answers and is at the code's migration."""

    ready: bool
    database: str  # "ok" | "unavailable"
    migration: str  # "head" | "behind" | "unknown"
    revision: str | None = None
    head: str | None = None


@dataclass(frozen=True)
class DatabaseStatus:
    ok: bool
    server_version: str = ""
    pgvector_version: str = ""
    migration: str = ""
    connected_as: str = ""
    embedded: bool = False
    error: str = ""


class HealthService:
    def __init__(self, probe: ServerProbePort, *, embedded: bool, head: str | None = None) -> None:
        self._probe = probe
        self._embedded = embedded
        self._head = head

    def readiness(self) -> Readiness:
        """Database reachable and migrated to this code's head (``/api/v1/ready``)."""
        try:
            info = self._probe.read()
        except DatabaseUnavailableError:
            return Readiness(False, "unavailable", "unknown", head=self._head)
        except DatabaseError:
            return Readiness(False, "error", "unknown", head=self._head)
        at_head = self._head is None or info.revision == self._head
        return Readiness(
            at_head,
            "ok",
            "head" if at_head else "behind",
            revision=info.revision,
            head=self._head,
        )

    def database_status(self) -> DatabaseStatus:
        """Server and pgvector versions, current role; ``ok=False`` with a reason when down."""
        try:
            info = self._probe.read()
        except DatabaseError as exc:
            return DatabaseStatus(ok=False, embedded=self._embedded, error=str(exc))
        return DatabaseStatus(
            ok=True,
            server_version=info.server_version,
            pgvector_version=info.pgvector_version or "missing",
            migration="migrated" if info.schema_present else "not migrated",
            connected_as=info.current_role,
            embedded=self._embedded,
        )
