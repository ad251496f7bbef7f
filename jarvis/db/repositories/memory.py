"""Memories: store, per-user vector search (exact, or a heavy user's own HNSW), hybrid, browse.

Per-user search never goes through a shared vector index: the planner would scan it for the
*global* nearest neighbours and then drop other users' rows (0.4 of 10 rows at 100k memories /
1k users, PERFORMANCE.md). Instead:

* exact: the user's own vectors of one model, read from the covering index
  ``ix_memories_user_model_embedding`` (index-only scan, one user's rows adjacent), distances
  computed exactly, the top k kept — always the true top k;
* approximate, for users with very many memories: a partial HNSW index of their own
  (``WHERE user_id = '<id>' AND embedding_model = '<model>'``, :mod:`.memory_indexes`), used
  when it exists and is valid. The statement names the user and model as literals so the
  planner can prove the partial index applies (a prepared statement's generic plan could not).

Vectors are ``halfvec``; a row without an embedding (NULL) is never compared, and a distance
that is not a number (a zero query vector) never passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import HALFVEC
from sqlalchemy import Float, Integer, Row, String, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Session

from jarvis.db.repositories.memory_indexes import sql_literal
from jarvis.db.tables import AgentRun, Conversation, Memory, User
from jarvis.db.vector_params import HalfvecParam

#: Weight of full-text relevance (0..1) next to cosine similarity in hybrid search.
TEXT_WEIGHT = 0.1
#: Candidates an HNSW scan considers (on random 256-d vectors, the worst case: 120 gave
#: recall@10 0.965, 200 gave 0.975-0.99 depending on the build; 300 keeps it >= 0.98).
ANN_EF_SEARCH = 300
#: Rows of the user whose k-th best distance bounds the exact scan (see ``_SEMANTIC_SQL``; the
#: exact search's own copy is in migration 0025) and hybrid search's vector candidates:
#: 100, 300 and 1,000 all cut the sort; 300 measured best at 10,000 rows.
EXACT_SAMPLE = 300


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


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What a user's search needs to know first: their chosen model (None: the instance
    default) and whether their own HNSW index for ``model`` exists and is usable."""

    chosen_model: str | None
    ann_index: bool


_COLUMNS = "m.id, m.content, m.embedding_model, m.metadata, m.source, m.created_at"

# Exact per-user scan: every vector of the user's model, through the covering index. There is
# no shared vector index for the planner to misuse; a heavy user's own HNSW index is on a cast
# expression (``embedding::halfvec(n)``) that this ORDER BY does not use.
#
# The statement is ``jarvis_memory_nearest`` (migration 0025), a SQL function whose plan each
# connection makes once (sent as text, it was planned on every search: ~0.5 of 5.6-7 ms for a
# 10,000-memory user on a loaded 2-core machine). It bounds itself: the k-th best distance among
# the first EXACT_SAMPLE of the user's rows is at least the true k-th best distance (those rows
# are k candidates), so every row of the true top k (ties included) passes ``distance <= bound``
# and the result is still exact. The scan still computes every distance once; what it saves is
# the top-k sort's per-row work (a tuple copy and compare for each of the user's rows): ~3 % of
# them reach it instead of all. A NULL embedding's distance is NULL and a zero vector's NaN:
# neither passes the outer filter, and a NaN bound (fewer than k comparable rows) lets every
# row through.
_SEMANTIC_SQL = text(
    "SELECT id, content, embedding_model, metadata, source, created_at, score"
    " FROM jarvis_memory_nearest(:user_id, :model, :query, :k, :min_score)"
).bindparams(
    bindparam("query", type_=HalfvecParam()),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
    bindparam("min_score", type_=Float()),
)

# The user's chosen model and whether their own HNSW index (named by ``ann_index_name``) for the
# model they search with is built and valid, in one round trip.
_SEARCH_PLAN_SQL = text(
    """
    SELECT u.embedding_model AS chosen,
           EXISTS (SELECT 1 FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
                    WHERE c.relname = 'ix_mem_ann_' || replace(CAST(:user_id AS text), '-', '')
                                      || '_' || left(md5(coalesce(u.embedding_model, :default)), 8)
                      AND i.indisvalid AND i.indisready) AS ann
    FROM (SELECT 1) one LEFT JOIN users u ON u.id = :user_id
    """
).bindparams(bindparam("user_id", type_=UUID(as_uuid=True)), bindparam("default", type_=String()))


def _ann_sql(user_id: uuid.UUID, model: str, dims: int) -> Any:
    """The approximate top k through the user's own HNSW index (literals: see the module)."""
    vec = f"halfvec({int(dims)})"
    return text(
        f"""
        WITH top AS (
            SELECT id, (embedding::{vec}) <=> CAST(:query AS {vec}) AS distance
            FROM memories
            WHERE user_id = {sql_literal(str(user_id))}::uuid
              AND embedding_model = {sql_literal(model)}
            ORDER BY (embedding::{vec}) <=> CAST(:query AS {vec})
            LIMIT :k
        )
        SELECT {_COLUMNS}, 1 - top.distance AS score
        FROM top JOIN memories m ON m.id = top.id
        WHERE top.distance <> 'NaN'::float8 AND 1 - top.distance >= :min_score
        ORDER BY top.distance, m.id
        """
    ).bindparams(
        bindparam("query", type_=HalfvecParam()),
        bindparam("k", type_=Integer()),
        bindparam("min_score", type_=Float()),
    )


# Hybrid: the best `pool` rows by vector distance (exact, bounded as in ``_SEMANTIC_SQL``: the
# pool-th best of a sample 20 times the pool) and by full-text rank, each candidate scored
# on one scale: cosine similarity plus TEXT_WEIGHT x its text relevance (ts_rank_cd normalised
# to [0, 1)). Text can reorder close calls and add exact-word hits, but a word shared with an
# unrelated memory cannot outvote meaning: reciprocal rank fusion ranked such a full-text hit
# first and made hybrid worse than vector-only on paraphrases (benchmarks/embedding_bench.py).
# The full-text candidates come from ``jarvis_memory_text_matches`` (migration 0027): the acting
# user's best matches through the GIN index, which a statement of the app role's cannot use under
# row-level security (``@@`` is not leakproof); the rows are then read here under it.
# The exact vector candidates: bounded as in ``_SEMANTIC_SQL`` (the pool-th best distance of a
# sample 20 times the pool).
_HYBRID_EXACT_VEC = """
    sample AS (
        SELECT embedding <=> :query AS distance FROM memories
        WHERE user_id = :user_id AND embedding_model = :model AND :use_vector
        LIMIT :sample
    ),
    bound AS (
        SELECT distance FROM sample ORDER BY distance LIMIT 1 OFFSET CAST(:pool AS integer) - 1
    ),
    vec AS (
        SELECT id FROM memories
        WHERE user_id = :user_id AND embedding_model = :model AND :use_vector
              AND (embedding <=> :query) <= coalesce((SELECT distance FROM bound), 'Infinity')
        ORDER BY embedding <=> :query, id
        LIMIT :pool
    ),"""

_HYBRID_REST = f"""
    fts AS (
        SELECT id, text_score FROM jarvis_memory_text_matches(:text, :pool)
    ),
    scored AS (
        SELECT m.id, fts.text_score,
               CASE WHEN :use_vector AND m.embedding_model = :model
                         AND m.embedding IS NOT NULL
                    THEN 1 - (m.embedding <=> :query) END AS sim
        FROM (SELECT id FROM vec UNION SELECT id FROM fts) c
        JOIN memories m ON m.id = c.id AND m.user_id = :user_id
        LEFT JOIN fts ON fts.id = c.id
    ),
    fused AS (
        SELECT id, sim, text_score,
               coalesce(sim, 0) + :text_weight * coalesce(text_score, 0) AS score
        FROM scored
        WHERE sim IS NULL OR sim <> 'NaN'::float8
    ),
    ranked AS (
        SELECT id, score,
               CASE WHEN sim IS NOT NULL
                    THEN row_number() OVER (ORDER BY sim DESC NULLS LAST, id) END AS vector_rank,
               CASE WHEN text_score IS NOT NULL
                    THEN row_number() OVER (ORDER BY text_score DESC NULLS LAST, id)
               END AS text_rank
        FROM fused
    )
    SELECT {_COLUMNS}, ranked.score, ranked.vector_rank, ranked.text_rank
    FROM ranked JOIN memories m ON m.id = ranked.id
    ORDER BY ranked.score DESC, m.id
    LIMIT :k
    """

_HYBRID_PARAMS = (
    bindparam("query", type_=HalfvecParam()),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("text", type_=String()),
    bindparam("k", type_=Integer()),
    bindparam("pool", type_=Integer()),
    bindparam("sample", type_=Integer()),
    bindparam("text_weight", type_=Float()),
)

_HYBRID_SQL = text("WITH" + _HYBRID_EXACT_VEC + _HYBRID_REST).bindparams(*_HYBRID_PARAMS)


def _hybrid_ann_sql(user_id: uuid.UUID, model: str, dims: int) -> Any:
    """Hybrid search whose vector candidates come from the user's own HNSW index (literals:
    see the module), for a user with very many memories: their exact scan is what made a
    hybrid search slow (tens of ms at 100,000 memories)."""
    vec = f"halfvec({int(dims)})"
    ann_vec = f"""
    vec AS (
        SELECT id FROM memories
        WHERE user_id = {sql_literal(str(user_id))}::uuid
          AND embedding_model = {sql_literal(model)}
        ORDER BY (embedding::{vec}) <=> CAST(:query AS {vec})
        LIMIT :pool
    ),"""
    params = [p for p in _HYBRID_PARAMS if p.key != "sample"]
    return text("WITH" + ann_vec + _HYBRID_REST).bindparams(*params)


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

    def conversations_of_runs(
        self, run_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
        """``run id -> (conversation id, title)`` for the user's runs among ``run_ids`` whose
        conversation still exists."""
        if not run_ids:
            return {}
        rows = self.session.execute(
            select(AgentRun.id, Conversation.id, Conversation.title)
            .join(Conversation, Conversation.id == AgentRun.conversation_id)
            .where(AgentRun.id.in_(list(set(run_ids))))
        ).all()
        return {row[0]: (row[1], row[2]) for row in rows}

    def add(
        self,
        *,
        user_id: uuid.UUID,
        content: str,
        embedding: Sequence[float] | None,
        embedding_model: str,
        metadata: Mapping[str, object] | None = None,
        source: str | None = None,
        created_at: datetime | None = None,
    ) -> MemoryRow:
        row = Memory(
            id=uuid.uuid4(),
            user_id=user_id,
            content=content,
            embedding=None if embedding is None else list(embedding),
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

    # -- the user's embedding model ---------------------------------------------------------

    def search_plan(self, user_id: uuid.UUID, default_model: str) -> SearchPlan:
        """The user's chosen model and whether their own HNSW index for the model they
        search with (chosen, else ``default_model``) is usable: one round trip."""
        row = self.session.execute(
            _SEARCH_PLAN_SQL, {"user_id": user_id, "default": default_model}
        ).one()
        return SearchPlan(row.chosen, bool(row.ann))

    def chosen_model(self, user_id: uuid.UUID) -> str | None:
        """The model the user chose (None: the instance default)."""
        return self.session.scalar(select(User.embedding_model).where(User.id == user_id))

    def choose_model(self, user_id: uuid.UUID, model: str | None) -> None:
        self.session.execute(update(User).where(User.id == user_id).values(embedding_model=model))

    def users_off_default(self, default_model: str) -> list[tuple[uuid.UUID, str]]:
        """(id, email) of the users who follow the instance default (no chosen model) but
        still have memories or entities of another model: the catch-up's work list. Needs a
        connection that sees every user's rows (the owner)."""
        rows = self.session.execute(
            text(
                """
                SELECT u.id, u.email FROM users u
                WHERE u.embedding_model IS NULL AND (
                    EXISTS (SELECT 1 FROM memories m
                             WHERE m.user_id = u.id AND m.embedding_model <> :model)
                    OR EXISTS (SELECT 1 FROM kg_entities e WHERE e.user_id = u.id
                                AND e.embedding_model IS DISTINCT FROM :model))
                ORDER BY u.email
                """
            ),
            {"model": default_model},
        ).all()
        return [(r.id, r.email) for r in rows]

    # -- search -----------------------------------------------------------------------------

    def semantic(
        self,
        user_id: uuid.UUID,
        model: str,
        query: Sequence[float],
        *,
        k: int,
        min_score: float = -1.0,
        ann_dims: int | None = None,
    ) -> list[MemoryRow]:
        """The user's ``k`` nearest memories of ``model``: exact, or through the user's own
        HNSW index when ``ann_dims`` (the model's size) is given."""
        if ann_dims is not None:
            self.session.execute(
                text("SELECT set_config('hnsw.ef_search', :ef, true)"),
                {"ef": str(max(ANN_EF_SEARCH, k))},
            )
            rows = self.session.execute(
                _ann_sql(user_id, model, ann_dims),
                {"query": list(query), "k": k, "min_score": min_score},
            )
        else:
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
        query: Sequence[float] | None,
        query_text: str,
        *,
        k: int,
        pool: int = 50,
        ann_dims: int | None = None,
    ) -> list[MemoryRow]:
        """Vector and full-text rankings fused (``query`` None: full text only). With
        ``ann_dims`` (the model's size) the vector candidates come from the user's own HNSW
        index, as in :meth:`semantic`."""
        pool = max(pool, k)
        params: dict[str, object] = {
            "query": list(query) if query is not None else None,
            "use_vector": query is not None,
            "user_id": user_id,
            "model": model,
            "text": query_text,
            "k": k,
            "pool": pool,
            "text_weight": TEXT_WEIGHT,
        }
        if ann_dims is not None and query is not None:
            self.session.execute(
                text("SELECT set_config('hnsw.ef_search', :ef, true)"),
                {"ef": str(max(ANN_EF_SEARCH, pool))},
            )
            rows = self.session.execute(_hybrid_ann_sql(user_id, model, ann_dims), params)
        else:
            params["sample"] = max(EXACT_SAMPLE, 20 * pool)
            rows = self.session.execute(_HYBRID_SQL, params)
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

    # -- re-embedding -----------------------------------------------------------------------

    def batch_not_in_model(
        self,
        user_id: uuid.UUID,
        model: str,
        batch_size: int = 200,
        *,
        after: uuid.UUID | None = None,
    ) -> list[tuple[uuid.UUID, str]]:
        """(id, content) of up to ``batch_size`` of the user's rows embedded with another
        model, by id from past ``after`` (the next batch to re-embed: each batch starts where
        the last ended instead of reading past every row already moved)."""
        stmt = select(Memory.id, Memory.content).where(
            Memory.user_id == user_id, Memory.embedding_model != model
        )
        if after is not None:
            stmt = stmt.where(Memory.id > after)
        rows = self.session.execute(stmt.order_by(Memory.id).limit(batch_size)).all()
        return [(r.id, r.content) for r in rows]

    def set_embeddings(
        self, vectors: Sequence[tuple[uuid.UUID, Sequence[float] | None]], model: str
    ) -> None:
        """Store new embeddings of one model (None: nothing to embed): one UPDATE by primary
        key, sent for the whole batch at once, each vector in binary (see ``_SET_EMBEDDING``)."""
        if vectors:
            self.session.execute(
                _SET_EMBEDDING,
                [
                    {"id": memory_id, "embedding": vector, "model": model}
                    for memory_id, vector in vectors
                ],
            )


# A re-embedded row (a move between embedders). The vector goes in binary (``HalfvecParam``): as
# text (``pgvector``'s ``HALFVEC``, the ORM's bulk UPDATE) writing a batch of 500 took 3.6x as
# long (270 against 74 ms, 2026-12-04), most of it making and parsing 128,000 numbers' text.
_SET_EMBEDDING = text(
    "UPDATE memories SET embedding = :embedding, embedding_model = :model WHERE id = :id"
).bindparams(
    bindparam("id", type_=UUID(as_uuid=True)),
    bindparam("embedding", type_=HalfvecParam()),
    bindparam("model", type_=String()),
)


# Used by benchmarks and tests: exact top k without the covering index (heap rows).
NAIVE_SQL = text(
    """
    SELECT id FROM memories
    WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL
    ORDER BY embedding <=> :query, id LIMIT :k
    """
).bindparams(
    bindparam("query", type_=HALFVEC()),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
)
