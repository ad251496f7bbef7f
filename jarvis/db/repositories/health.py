"""What the server says about itself (home page status)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class ServerInfo:
    server_version: str
    pgvector_version: str | None
    current_role: str
    schema_present: bool


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
    )
