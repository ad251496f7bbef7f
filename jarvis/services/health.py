"""Is the database reachable, migrated and protected? (Shown on the home page.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from jarvis.db.repositories.health import read_server_info


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
    def __init__(self, engine: Engine, *, embedded: bool) -> None:
        self._engine = engine
        self._embedded = embedded

    def database_status(self) -> DatabaseStatus:
        """Server and pgvector versions, current role; ``ok=False`` with a reason when down."""
        try:
            with self._engine.connect() as conn:
                info = read_server_info(conn)
            return DatabaseStatus(
                ok=True,
                server_version=info.server_version,
                pgvector_version=info.pgvector_version or "missing",
                migration="migrated" if info.schema_present else "not migrated",
                connected_as=info.current_role,
                embedded=self._embedded,
            )
        except SQLAlchemyError as exc:
            return DatabaseStatus(ok=False, embedded=self._embedded, error=type(exc).__name__)
