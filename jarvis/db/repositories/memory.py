"""Memories: store, exact per-user vector search, full-text + vector hybrid (RRF), browse.

The per-user search never goes through the global HNSW index: the planner would scan the
index for the *global* nearest neighbours and then drop other users' rows (0.4 of 10 rows at
100k memories / 1k users, PERFORMANCE.md). Instead the user's own vectors of one embedding
model are read in a MATERIALIZED CTE (index-only scan of
``ix_memories_user_model_embedding``), distances computed exactly, the top k kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Float, Integer, Row, String, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Session

from jarvis.db.tables import EMBEDDING_DIM, Memory

#: Rank-fusion constant (Cormack et al.): 60 is the usual choice.
RRF_K = 60


@dataclass(frozen=True, slots=True)
class MemoryRow:
    id: uuid.UUID
    content: str
    embedding_model: str
    metadata: dict[str, object]
    source: str | None
    created_at: datetime
    score: float | None = None
    vector_rank: int | None = None
    text_rank: int | None = None


_COLUMNS = "m.id, m.content, m.embedding_model, m.metadata, m.source, m.created_at"

# Exact per-user scan. MATERIALIZED keeps the planner from pushing ORDER BY/LIMIT into the CTE
# (which would let it pick the global HNSW index).
_SEMANTIC_SQL = text(
    f"""
    WITH mine AS MATERIALIZED (
        SELECT id, embedding <=> :query AS distance
        FROM memories
        WHERE user_id = :user_id AND embedding_model = :model
    ),
    top AS (
        SELECT id, distance FROM mine
        WHERE 1 - distance >= :min_score
        ORDER BY distance, id
        LIMIT :k
    )
    SELECT {_COLUMNS}, 1 - top.distance AS score
    FROM top JOIN memories m ON m.id = top.id
    ORDER BY top.distance, m.id
    """
).bindparams(
    bindparam("query", type_=Vector(EMBEDDING_DIM)),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
    bindparam("min_score", type_=Float()),
)

# Hybrid: the best `pool` rows by vector distance and by full-text rank, fused with
# reciprocal rank fusion: score = sum over lists of 1 / (RRF_K + rank).
_HYBRID_SQL = text(
    f"""
    WITH mine AS MATERIALIZED (
        SELECT id, embedding <=> :query AS distance
        FROM memories
        WHERE user_id = :user_id AND embedding_model = :model
    ),
    vec AS (
        SELECT id, row_number() OVER (ORDER BY distance, id) AS rnk
        FROM (SELECT id, distance FROM mine ORDER BY distance, id LIMIT :pool) v
    ),
    q AS (SELECT websearch_to_tsquery('english', :text) AS tsq),
    fts AS (
        SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS rnk
        FROM (
            SELECT m.id, ts_rank_cd(m.content_tsv, q.tsq) AS rank
            FROM memories m, q
            WHERE m.user_id = :user_id AND m.content_tsv @@ q.tsq
            ORDER BY rank DESC, m.id
            LIMIT :pool
        ) t
    ),
    fused AS (
        SELECT coalesce(vec.id, fts.id) AS id,
               coalesce(1.0 / (:rrf_k + vec.rnk), 0) + coalesce(1.0 / (:rrf_k + fts.rnk), 0)
                   AS score,
               vec.rnk AS vector_rank, fts.rnk AS text_rank
        FROM vec FULL OUTER JOIN fts ON vec.id = fts.id
    )
    SELECT {_COLUMNS}, fused.score, fused.vector_rank, fused.text_rank
    FROM fused JOIN memories m ON m.id = fused.id
    ORDER BY fused.score DESC, m.id
    LIMIT :k
    """
).bindparams(
    bindparam("query", type_=Vector(EMBEDDING_DIM)),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("text", type_=String()),
    bindparam("k", type_=Integer()),
    bindparam("pool", type_=Integer()),
    bindparam("rrf_k", type_=Integer()),
)


def _row(
    r: Row[Any],
    *,
    score: float | None = None,
    vector_rank: int | None = None,
    text_rank: int | None = None,
) -> MemoryRow:
    """A search result row (``_COLUMNS`` plus the ranking columns)."""
    return MemoryRow(
        id=r.id,
        content=r.content,
        embedding_model=r.embedding_model,
        metadata=dict(r.metadata or {}),
        source=r.source,
        created_at=r.created_at,
        score=score,
        vector_rank=vector_rank,
        text_rank=text_rank,
    )


def _memory_row(m: Memory) -> MemoryRow:
    return MemoryRow(
        id=m.id,
        content=m.content,
        embedding_model=m.embedding_model,
        metadata=dict(m.metadata_ or {}),
        source=m.source,
        created_at=m.created_at,
    )


class MemoryRepository:
    """SQL for the ``memories`` table. Row-level security scopes every statement to the user."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        user_id: uuid.UUID,
        content: str,
        embedding: Sequence[float],
        embedding_model: str,
        metadata: Mapping[str, object] | None = None,
        source: str | None = None,
        created_at: datetime | None = None,
    ) -> MemoryRow:
        row = Memory(
            id=uuid.uuid4(),
            user_id=user_id,
            content=content,
            embedding=list(embedding),
            embedding_model=embedding_model,
            metadata_=dict(metadata or {}),
            source=source,
        )
        if created_at is not None:
            row.created_at = created_at
        self.session.add(row)
        self.session.flush()
        return _memory_row(row)

    def get(self, memory_id: uuid.UUID) -> MemoryRow | None:
        row = self.session.get(Memory, memory_id)
        return _memory_row(row) if row is not None else None

    def delete(self, memory_id: uuid.UUID) -> bool:
        result = self.session.execute(delete(Memory).where(Memory.id == memory_id))
        return bool(getattr(result, "rowcount", 0))

    def semantic(
        self,
        user_id: uuid.UUID,
        model: str,
        query: Sequence[float],
        *,
        k: int,
        min_score: float = -1.0,
    ) -> list[MemoryRow]:
        rows = self.session.execute(
            _SEMANTIC_SQL,
            {
                "query": list(query),
                "user_id": user_id,
                "model": model,
                "k": k,
                "min_score": min_score,
            },
        )
        return [_row(r, score=float(r.score), vector_rank=i + 1) for i, r in enumerate(rows)]

    def hybrid(
        self,
        user_id: uuid.UUID,
        model: str,
        query: Sequence[float],
        query_text: str,
        *,
        k: int,
        pool: int = 50,
    ) -> list[MemoryRow]:
        rows = self.session.execute(
            _HYBRID_SQL,
            {
                "query": list(query),
                "user_id": user_id,
                "model": model,
                "text": query_text,
                "k": k,
                "pool": max(pool, k),
                "rrf_k": RRF_K,
            },
        )
        return [
            _row(r, score=float(r.score), vector_rank=r.vector_rank, text_rank=r.text_rank)
            for r in rows
        ]

    def browse(
        self,
        user_id: uuid.UUID,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        contains: str | None = None,
        source: str | None = None,
        model: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[MemoryRow]:
        stmt = select(Memory).where(Memory.user_id == user_id)
        if since is not None:
            stmt = stmt.where(Memory.created_at >= since)
        if until is not None:
            stmt = stmt.where(Memory.created_at < until)
        if contains:
            escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Memory.content.ilike(f"%{escaped}%", escape="\\"))
        if source:
            # The agent records "run:<id>"; people type the bare id.
            stmt = stmt.where(Memory.source.in_([source, f"run:{source.removeprefix('run:')}"]))
        if model:
            stmt = stmt.where(Memory.embedding_model == model)
        stmt = stmt.order_by(Memory.created_at.desc(), Memory.id).limit(limit).offset(offset)
        return [_memory_row(m) for m in self.session.scalars(stmt)]

    def count_by_model(self, user_id: uuid.UUID) -> dict[str, int]:
        rows = self.session.execute(
            select(Memory.embedding_model, func.count())
            .where(Memory.user_id == user_id)
            .group_by(Memory.embedding_model)
        )
        return {model: int(n) for model, n in rows}

    def latest_model(self, user_id: uuid.UUID) -> str | None:
        return self.session.scalar(
            select(Memory.embedding_model)
            .where(Memory.user_id == user_id)
            .order_by(Memory.created_at.desc())
            .limit(1)
        )

    def batch_not_in_model(
        self, user_id: uuid.UUID, model: str, batch_size: int = 200
    ) -> list[tuple[uuid.UUID, str]]:
        """(id, content) of up to ``batch_size`` of the user's rows embedded with another
        model (the next batch to re-embed)."""
        rows = self.session.execute(
            select(Memory.id, Memory.content)
            .where(Memory.user_id == user_id, Memory.embedding_model != model)
            .order_by(Memory.id)
            .limit(batch_size)
        ).all()
        return [(r.id, r.content) for r in rows]

    def set_embeddings(
        self, vectors: Sequence[tuple[uuid.UUID, Sequence[float]]], model: str
    ) -> None:
        """Store new embeddings of one model: one batched UPDATE by primary key."""
        if vectors:
            self.session.execute(
                update(Memory),
                [
                    {"id": memory_id, "embedding": list(vector), "embedding_model": model}
                    for memory_id, vector in vectors
                ],
            )


# Used by benchmarks and tests to show what the planner does with the naive query.
NAIVE_SQL = text(
    """
    SELECT id FROM memories
    WHERE user_id = :user_id AND embedding_model = :model
    ORDER BY embedding <=> :query LIMIT :k
    """
).bindparams(
    bindparam("query", type_=Vector(EMBEDDING_DIM)),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
)
