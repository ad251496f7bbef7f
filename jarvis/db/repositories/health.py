"""What the server says about itself (home page status, readiness checks)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from jarvis.db.errors import translate


@dataclass(frozen=True)
class ServerInfo:
    server_version: str
    pgvector_version: str | None
    current_role: str
    schema_present: bool
    revision: str | None = None


def read_server_info(conn: Connection) -> ServerInfo:
    """Server and pgvector versions, the role connected, whether the schema exists."""
    return ServerInfo(
        server_version=str(conn.scalar(text("show server_version")) or ""),
        pgvector_version=conn.scalar(
            text("select extversion from pg_extension where extname = 'vector'")
        ),
        current_role=str(conn.scalar(text("select current_user")) or ""),
        schema_present=bool(
            conn.scalar(
                text("select count(*) from information_schema.tables where table_name = 'users'")
            )
        ),
        revision=conn.scalar(
            text(
                "select case when to_regclass('alembic_version') is null then null"
                " else (select max(version_num) from alembic_version) end"
            )
        ),
    )


class ServerProbe:
    """Reads :class:`ServerInfo` on its own connection (outside any user's transaction)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self) -> ServerInfo:
        """The server's details; a :mod:`jarvis.errors` type when it cannot be reached."""
        try:
            with self._engine.connect() as conn:
                return read_server_info(conn)
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    def ping(self) -> None:
        """One round trip (``select 1``); a :mod:`jarvis.errors` type when it fails."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("select 1"))
        except SQLAlchemyError as exc:
            raise translate(exc) from exc
