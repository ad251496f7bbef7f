"""Bulk writes of demo data (``jarvis demo seed``): ``COPY`` on the owner connection.

Everything runs in the caller's transaction. ``COPY FROM`` is refused on row-level-secured
tables for a role subject to RLS, so the owner must be a superuser or have ``BYPASSRLS``
(``UsageRepository.sees_every_row``). During :meth:`DemoDataRepository.begin_bulk_load`
foreign-key triggers are skipped (``session_replication_role = replica``): the generator
(``jarvis.demo``) writes consistent rows, in dependency order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from jarvis.db.tables import KgEntity, KgRelation, Memory

#: The tables a demo seed fills (analysed after it).
DEMO_TABLES = (
    "users",
    "conversations",
    "agent_runs",
    "messages",
    "tool_calls",
    "usage_daily",
    "tool_usage_daily",
)
#: Kept by triggers while the rollups were rebuilt: every run updated a few of their rows, so
#: they are mostly dead rows afterwards (19 MB for 1.4 MB of live ones): rewritten.
DERIVED_TABLES = ("usage_daily_all", "tool_usage_daily_all", "usage_user_daily")


class DemoUser(NamedTuple):
    id: uuid.UUID
    email: str
    display_name: str
    password_hash: str
    role: str
    is_active: bool
    timezone: str
    monthly_budget_usd: Decimal | None
    created_at: datetime
    last_login_at: datetime


class DemoConversation(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    title: str
    provider: str
    model: str
    created_at: datetime
    updated_at: datetime


class DemoRun(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    provider: str
    model: str
    status: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    total_cost: Decimal | None
    price_version: int | None
    unpriced: bool
    error: str | None
    started_at: datetime
    finished_at: datetime


class DemoMessage(NamedTuple):
    id: uuid.UUID
    run_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    content: str
    created_at: datetime


class DemoToolCall(NamedTuple):
    id: uuid.UUID
    run_id: uuid.UUID
    user_id: uuid.UUID
    tool_id: str
    arguments: Mapping[str, object]
    result: Mapping[str, object]
    status: str
    latency_ms: int | None
    created_at: datetime


#: One knowledge-graph / memory row as column -> value (``metadata`` for a memory's metadata).
KnowledgeRow = Mapping[str, object]


class DemoDataRepository:
    """``COPY`` writers for generated demo rows, and the knowledge-graph inserts."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _driver(self) -> Any:
        """The psycopg connection under this transaction (``COPY`` needs it; same transaction)."""
        return self.session.connection().connection.driver_connection

    # -- the bulk load ------------------------------------------------------------------------

    def begin_bulk_load(self) -> None:
        """Skip foreign-key triggers and the synchronous commit for the rest of the transaction."""
        self.session.execute(text("SET LOCAL session_replication_role = replica"))
        self.session.execute(text("SET LOCAL synchronous_commit = off"))

    def end_bulk_load(self) -> None:
        """Triggers apply again (before the rollups are rebuilt in the same transaction)."""
        self.session.execute(text("SET LOCAL session_replication_role = origin"))

    def email_taken(self, email: str) -> bool:
        return bool(
            self.session.scalar(
                text("SELECT 1 FROM users WHERE lower(email) = lower(:e)"), {"e": email}
            )
        )

    def user_count(self) -> int:
        return int(self.session.scalar(text("SELECT count(*) FROM users")) or 0)

    def _copy(self, statement: str, rows: Iterable[Sequence[object]]) -> int:
        n = 0
        with self._driver().cursor().copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def copy_users(self, rows: Iterable[DemoUser]) -> int:
        return self._copy(
            "COPY users (id, email, display_name, password_hash, role, is_active, timezone,"
            " monthly_budget_usd, created_at, last_login_at) FROM STDIN",
            rows,
        )

    def copy_conversations(self, rows: Iterable[DemoConversation]) -> int:
        return self._copy(
            "COPY conversations (id, user_id, title, provider, model, created_at, updated_at)"
            " FROM STDIN",
            rows,
        )

    def copy_runs(self, rows: Iterable[DemoRun]) -> int:
        return self._copy(
            "COPY agent_runs (id, user_id, conversation_id, provider, model, status,"
            " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens,"
            " total_cost, price_version, unpriced, error, started_at, finished_at) FROM STDIN",
            rows,
        )

    def copy_messages(self, rows: Iterable[DemoMessage]) -> int:
        return self._copy(
            "COPY messages (id, run_id, conversation_id, user_id, role, content, created_at)"
            " FROM STDIN",
            rows,
        )

    def copy_tool_calls(self, rows: Iterable[DemoToolCall]) -> int:
        return self._copy(
            "COPY tool_calls (id, run_id, user_id, tool_id, arguments, result, status,"
            " latency_ms, created_at) FROM STDIN",
            ((*r[:4], Jsonb(r.arguments), Jsonb(r.result), *r[6:]) for r in rows),
        )

    def insert_knowledge(
        self,
        entities: Sequence[KnowledgeRow],
        relations: Sequence[KnowledgeRow],
        memories: Sequence[KnowledgeRow],
    ) -> None:
        """One user's generated entities, relations and memories (plain inserts)."""
        conn = self.session.connection()
        conn.execute(insert(KgEntity), [dict(e) for e in entities])
        conn.execute(insert(KgRelation), [dict(r) for r in relations])
        conn.execute(
            insert(Memory),
            [
                {**{k: v for k, v in m.items() if k != "metadata"}, "metadata_": m["metadata"]}
                for m in memories
            ],
        )

    def vacuum_analyze(self) -> None:
        """``VACUUM ANALYZE`` the demo tables after the load committed (fresh statistics and
        visibility map for index-only scans), outside any transaction, on a connection of its
        own."""
        engine = self.session.get_bind().engine
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in DEMO_TABLES:
                conn.execute(text(f"VACUUM ANALYZE {table}"))
            for table in DERIVED_TABLES:
                # FULL compacts what the load's upserts left behind but does not set the
                # visibility map; the plain VACUUM after it does (else the admin's rollup
                # reads visit the heap until autovacuum comes by: 17-27 ms vs 12-15 ms).
                conn.execute(text(f"VACUUM (FULL) {table}"))
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
