"""Per-user HNSW indexes for users with very many memories (the owner's maintenance).

An exact scan of a user's vectors costs ~0.2 µs per row (256-d halfvec): fine up to tens of
thousands of rows, 20+ ms beyond 100,000. Such a user gets an HNSW index of their own, partial
on ``user_id = '<id>' AND embedding_model = '<model>'`` over ``embedding::halfvec(<dims>)``
(cosine, m = 16, ef_construction = 64): it holds only that user's rows, so a search through it
returns k of *their* neighbours (a shared index returns other users' and loses rows).

Indexes are built ``CONCURRENTLY`` (no lock on writes) on an autocommit connection of the
owner; the name is derived from the user and model (:func:`ann_index_name`) so the search can
check with one catalog lookup that it exists and is valid.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, text

#: Name prefix of every per-user memory HNSW index.
ANN_PREFIX = "ix_mem_ann_"


def sql_literal(value: str) -> str:
    """A quoted SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1)."""
    if "\x00" in value:
        raise ValueError("NUL in an SQL literal")
    return "'" + value.replace("'", "''") + "'"


def ann_index_name(user_id: uuid.UUID, model: str) -> str:
    """``ix_mem_ann_<user hex>_<8 hex of md5(model)>`` (52 characters, under PostgreSQL's 63);
    the search computes the same name in SQL."""
    digest = hashlib.md5(model.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
    return f"{ANN_PREFIX}{user_id.hex}_{digest}"


@dataclass(frozen=True, slots=True)
class HeavyUser:
    """A user's memories of one model: how many have a vector, and their size."""

    user_id: uuid.UUID
    model: str
    rows: int
    dims: int


@dataclass(frozen=True, slots=True)
class AnnIndex:
    name: str
    valid: bool


class MemoryIndexRepository:
    """DDL and catalog reads for the per-user indexes, on the OWNER engine (it must see every
    user's rows: a superuser or BYPASSRLS role, as for the usage maintenance)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def users_with_at_least(self, min_rows: int) -> list[HeavyUser]:
        """(user, model) pairs with at least ``min_rows`` embedded memories."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT user_id, embedding_model, count(*) AS n, "
                    "max(vector_dims(embedding)) AS dims FROM memories "
                    "WHERE embedding IS NOT NULL GROUP BY user_id, embedding_model "
                    "HAVING count(*) >= :min ORDER BY count(*) DESC"
                ),
                {"min": min_rows},
            ).all()
        return [HeavyUser(r.user_id, r.embedding_model, int(r.n), int(r.dims)) for r in rows]

    def existing(self) -> list[AnnIndex]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT c.relname AS name, i.indisvalid AND i.indisready AS valid "
                    "FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                    "WHERE c.relname LIKE :prefix ORDER BY c.relname"
                ),
                {"prefix": ANN_PREFIX.replace("_", "\\_") + "%"},
            ).all()
        return [AnnIndex(r.name, bool(r.valid)) for r in rows]

    def create(self, user: HeavyUser, *, maintenance_work_mem: str = "256MB") -> str:
        """Build the user's index (an invalid leftover of an interrupted build is dropped
        first); returns its name."""
        name = ann_index_name(user.user_id, user.model)
        dims = int(user.dims)
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(
                text("SELECT set_config('maintenance_work_mem', :m, false)"),
                {"m": maintenance_work_mem},
            )
            valid = conn.scalar(
                text(
                    "SELECT i.indisvalid FROM pg_class c JOIN pg_index i "
                    "ON i.indexrelid = c.oid WHERE c.relname = :n"
                ),
                {"n": name},
            )
            if valid is False:
                conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
            conn.execute(
                text(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON memories '
                    f"USING hnsw ((embedding::halfvec({dims})) halfvec_cosine_ops) "
                    "WITH (m = 16, ef_construction = 64) "
                    f"WHERE user_id = {sql_literal(str(user.user_id))}::uuid "
                    f"AND embedding_model = {sql_literal(user.model)}"
                )
            )
        return name

    def drop(self, name: str) -> None:
        if not name.startswith(ANN_PREFIX) or not name.replace("_", "").isalnum():
            raise ValueError(f"not a per-user memory index: {name!r}")
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"'))
