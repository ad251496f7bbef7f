"""Per-user top-k stays exact at a scale where the global HNSW index would lose rows.

20,000 memories of 200 users (100 each) with the HNSW index built: a per-user query through
the global index finds the global nearest neighbours and then drops other users' rows. Our plan
(exact scan of the user's own rows) must return the true top k for every user.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from jarvis.config import Settings
from jarvis.db.engine import create_app_engine
from jarvis.db.repositories.memory import _SEMANTIC_SQL, NAIVE_SQL
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.llm.embedders import LEXICAL_MODEL

pytestmark = pytest.mark.slow  # 20,000 memories and an HNSW index: ~15 s of set-up

USERS = 200
PER_USER = 100
K = 10


@pytest.fixture(scope="module")
def big_db(
    fresh_database: Callable[[], Settings],
) -> Iterator[tuple[Settings, Engine, list[uuid.UUID]]]:
    s = fresh_database()
    owner = create_engine(s.owner_url())
    with owner.begin() as conn:
        conn.execute(text("DROP INDEX ix_memories_embedding_hnsw"))
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash) "
                "SELECT 'scale' || g || '@example.com', 'x' FROM generate_series(1, :n) g"
            ),
            {"n": USERS},
        )
        conn.execute(
            text(
                """
            INSERT INTO memories (user_id, content, embedding, embedding_model)
            SELECT u.id, 'memory ' || g.i,
                   ARRAY(SELECT random() - 0.5 + 0 * g.i FROM generate_series(1, 384))::vector(384),
                   :model
            FROM users u, generate_series(1, :per_user) g(i)
            """
            ),
            {"per_user": PER_USER, "model": LEXICAL_MODEL},
        )
        conn.execute(
            text(
                "CREATE INDEX ix_memories_embedding_hnsw ON memories "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
        )
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE memories"))
    with owner.connect() as conn:
        user_ids = list(conn.scalars(text("SELECT id FROM users ORDER BY email")))
    app = create_app_engine(s)
    yield s, app, user_ids
    app.dispose()
    owner.dispose()


def _query_vector(rng: random.Random) -> list[float]:
    return [rng.random() - 0.5 for _ in range(384)]


def _exact(conn: Any, uid: uuid.UUID, q: list[float], k: int) -> list[uuid.UUID]:
    conn.execute(text("SET LOCAL enable_indexscan = off"))
    conn.execute(text("SET LOCAL enable_bitmapscan = off"))
    ids = list(
        conn.scalars(NAIVE_SQL, {"user_id": uid, "model": LEXICAL_MODEL, "query": q, "k": k})
    )
    conn.execute(text("RESET enable_indexscan"))
    conn.execute(text("RESET enable_bitmapscan"))
    return ids


def test_per_user_top_k_is_exact_for_every_user_sampled(big_db) -> None:  # type: ignore[no-untyped-def]
    s, app, user_ids = big_db
    rng = random.Random(7)
    uow = UnitOfWorkFactory(app)
    owner = create_engine(s.owner_url())
    try:
        for uid in rng.sample(user_ids, 25):
            q = _query_vector(rng)
            with owner.begin() as conn:
                truth = _exact(conn, uid, q, K)
            with uow.for_user_id(uid) as w:
                got = w.memories.semantic(uid, LEXICAL_MODEL, q, k=K)
            assert len(truth) == K
            assert [r.id for r in got] == truth
    finally:
        owner.dispose()


def test_the_global_index_would_lose_rows_at_this_scale(big_db) -> None:  # type: ignore[no-untyped-def]
    """The trap, shown: without a per-user path the planner scans the global HNSW index."""
    s, _, user_ids = big_db
    rng = random.Random(11)
    owner = create_engine(s.owner_url())
    rows = 0
    try:
        with owner.connect() as conn:
            trans = conn.begin()
            conn.execute(text("DROP INDEX ix_memories_user_model_embedding"))
            conn.execute(text("DROP INDEX ix_memories_user_id_created_at"))
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            for uid in rng.sample(user_ids, 25):
                params = {
                    "user_id": uid,
                    "model": LEXICAL_MODEL,
                    "query": _query_vector(rng),
                    "k": K,
                }
                plan = "\n".join(
                    conn.scalars(
                        text("EXPLAIN " + str(NAIVE_SQL)), {**params, "query": str(params["query"])}
                    )
                )
                assert "ix_memories_embedding_hnsw" in plan
                rows += len(list(conn.scalars(NAIVE_SQL, params)))
            trans.rollback()
    finally:
        owner.dispose()
    assert rows / 25 < K / 2, f"naive global-index query returned {rows / 25} of {K} rows"


def test_our_plan_never_touches_the_hnsw_index(big_db) -> None:  # type: ignore[no-untyped-def]
    _, app, user_ids = big_db
    q = _query_vector(random.Random(1))
    uow = UnitOfWorkFactory(app)
    with uow.for_user_id(user_ids[0]) as w:
        plan = "\n".join(
            w.session.scalars(
                text("EXPLAIN " + str(_SEMANTIC_SQL.compile(compile_kwargs={}))),
                {
                    "user_id": user_ids[0],
                    "model": LEXICAL_MODEL,
                    "query": str(q),
                    "k": K,
                    "min_score": -1.0,
                },
            )
        )
    assert "hnsw" not in plan.lower()
    assert "ix_memories_user_model_embedding" in plan


def test_a_user_with_fewer_rows_than_k_gets_all_of_them(big_db) -> None:  # type: ignore[no-untyped-def]
    _, app, user_ids = big_db
    uow = UnitOfWorkFactory(app)
    with uow.for_user_id(user_ids[3]) as w:
        got = w.memories.semantic(
            user_ids[3], LEXICAL_MODEL, _query_vector(random.Random(2)), k=PER_USER + 50
        )
    assert len(got) == PER_USER
    assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)
