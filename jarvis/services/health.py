"""Is the database reachable, migrated and protected? (Shown on the home page.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError


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
                version = conn.scalar(text("show server_version")) or ""
                vector = conn.scalar(
                    text("select extversion from pg_extension where extname = 'vector'")
                )
                role = conn.scalar(text("select current_user")) or ""
                migration = conn.scalar(
                    text(
                        "select count(*) from information_schema.tables where table_name = 'users'"
                    )
                )
            return DatabaseStatus(
                ok=True,
                server_version=str(version),
                pgvector_version=str(vector or "missing"),
                migration="migrated" if migration else "not migrated",
                connected_as=str(role),
                embedded=self._embedded,
            )
        except SQLAlchemyError as exc:
            return DatabaseStatus(ok=False, embedded=self._embedded, error=type(exc).__name__)
