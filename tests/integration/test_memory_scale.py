"""Per-user top k, checked against numpy (the oracle), at a scale where a shared HNSW index
would lose rows; a heavy user's own HNSW index keeps recall@10 >= 0.98.

20,000 random 256-d memories of 200 users (100 each) plus one user with 3,000, stored as
``halfvec``. The oracle reads the stored vectors back and ranks them with numpy (cosine, ties by
id): the exact search must return exactly its top k, so a faster query can never become a wrong
one.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, text

from jarvis.config import Settings
from jarvis.db.engine import create_app_engine
from jarvis.db.repositories.memory import NAIVE_SQL
from jarvis.db.repositories.memory_indexes import MemoryIndexRepository
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.services.memory import MemoryIndexes

pytestmark = pytest.mark.slow  # 20,000 memories and an HNSW index: ~15 s of set-up

USERS = 200
PER_USER = 100
HEAVY = 3000
DIM = 256
MODEL = "random-256"
K = 10


@pytest.fixture(scope="module")
def big_db(
    fresh_database: Callable[[], Settings],
) -> Iterator[tuple[Settings, Engine, list[uuid.UUID], uuid.UUID]]:
    s = fresh_database()
    owner = create_engine(s.owner_url())
    with owner.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash) "
                "SELECT 'scale' || g || '@example.com', 'x' FROM generate_series(0, :n) g"
            ),
            {"n": USERS},
        )
        conn.execute(
            text(
                """
            INSERT INTO memories (user_id, content, embedding, embedding_model)
            SELECT u.id, 'memory ' || g.i,
                   ARRAY(SELECT random() - 0.5 + 0 * g.i FROM generate_series(1, :dim))::halfvec,
                   :model
            FROM users u, generate_series(1, CASE WHEN u.email = 'scale0@example.com'
                                                  THEN :heavy ELSE :per_user END) g(i)
            ORDER BY random()
            """
            ),
            {"per_user": PER_USER, "heavy": HEAVY, "model": MODEL, "dim": DIM},
        )
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE memories"))
    with owner.connect() as conn:
        heavy = conn.scalar(text("SELECT id FROM users WHERE email = 'scale0@example.com'"))
        user_ids = list(
            conn.scalars(text("SELECT id FROM users WHERE id <> :h ORDER BY email"), {"h": heavy})
        )
    app = create_app_engine(s)
    yield s, app, user_ids, heavy
    app.dispose()
    owner.dispose()


def _query_vector(rng: random.Random) -> list[float]:
    return [rng.random() - 0.5 for _ in range(DIM)]


_STORED: dict[tuple[str, uuid.UUID], tuple[list[uuid.UUID], Any]] = {}


def _stored(owner: Engine, uid: uuid.UUID) -> tuple[list[uuid.UUID], Any]:
    """A user's stored vectors (read once: the module's data does not change)."""
    key = (owner.url.render_as_string(), uid)
    if key not in _STORED:
        with owner.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, embedding::text FROM memories "
                    "WHERE user_id = :u AND embedding_model = :m"
                ),
                {"u": uid, "m": MODEL},
            ).all()
        # "[0.1,...]" is a JSON array
        _STORED[key] = ([r[0] for r in rows], np.array([json.loads(r[1]) for r in rows]))
    return _STORED[key]


def _oracle(owner: Engine, uid: uuid.UUID, q: list[float], k: int) -> list[uuid.UUID]:
    """numpy's exact top k over the stored (half precision) vectors, ties by id."""
    ids, vectors = _stored(owner, uid)
    query = np.array(q, dtype=np.float16).astype(np.float64)  # the query is sent as halfvec
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    order = sorted(range(len(ids)), key=lambda i: (-sims[i], str(ids[i])))
    return [ids[i] for i in order[:k]]


def test_per_user_top_k_is_exactly_numpys(big_db: Any) -> None:
    s, app, user_ids, heavy = big_db
    rng = random.Random(7)
    uow = UnitOfWorkFactory(app)
    owner = create_engine(s.owner_url())
    try:
        for uid in [*rng.sample(user_ids, 25), heavy]:
            q = _query_vector(rng)
            truth = _oracle(owner, uid, q, K)
            with uow.for_user_id(uid) as w:
                got = w.memories.semantic(uid, MODEL, q, k=K)
            assert len(truth) == K
            assert {r.id for r in got} == set(truth)
            assert [r.id for r in got][:3] == truth[:3]
            assert [r.score for r in got] == sorted((r.score for r in got), reverse=True)
    finally:
        owner.dispose()


def test_a_shared_index_would_lose_rows_at_this_scale(big_db: Any) -> None:
    """The trap, shown: through one HNSW index over everyone's rows, a per-user query gets the
    global neighbours and drops the other users' ones (why 0012 has no shared index)."""
    s, _, user_ids, _ = big_db
    rng = random.Random(11)
    owner = create_engine(s.owner_url())
    rows = 0
    try:
        with owner.connect() as conn:
            trans = conn.begin()
            conn.execute(text("DROP INDEX ix_memories_user_model_embedding"))
            conn.execute(text("DROP INDEX ix_memories_user_id_created_at"))
            conn.execute(
                text(
                    # a small graph builds in a fraction of the default's time; the trap is
                    # the same for any shared index (a scan yields ef_search rows, then filters)
                    "CREATE INDEX shared_hnsw ON memories USING hnsw "
                    "((embedding::halfvec(256)) halfvec_cosine_ops) "
                    "WITH (m = 8, ef_construction = 16)"
                )
            )
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            naive = (
                "SELECT id FROM memories WHERE user_id = :user_id "
                "ORDER BY embedding::halfvec(256) <=> CAST(:query AS halfvec(256)) LIMIT :k"
            )
            for uid in rng.sample(user_ids, 25):
                params = {"user_id": uid, "query": str(_query_vector(rng)), "k": K}
                plan = "\n".join(conn.scalars(text("EXPLAIN " + naive), params))
                assert "shared_hnsw" in plan
                rows += len(list(conn.scalars(text(naive), params)))
            trans.rollback()
    finally:
        owner.dispose()
    assert rows / 25 < K / 2, f"a shared-index query returned {rows / 25} of {K} rows"


def test_the_exact_plan_reads_the_covering_index(big_db: Any) -> None:
    _, app, user_ids, _ = big_db
    q = _query_vector(random.Random(1))
    uow = UnitOfWorkFactory(app)
    with uow.for_user_id(user_ids[0]) as w:
        plan = "\n".join(
            w.session.scalars(
                text("EXPLAIN " + str(NAIVE_SQL)),
                {"user_id": user_ids[0], "model": MODEL, "query": str(q), "k": K},
            )
        )
    assert "hnsw" not in plan.lower()
    assert "ix_memories_user_model_embedding" in plan


def test_a_heavy_users_own_index_keeps_recall(big_db: Any) -> None:
    """Through the service: once the heavy user's own HNSW exists, searches use it (and only
    they do), with recall@10 >= 0.98 against numpy, hybrid searches too."""
    from jarvis.bootstrap import build_services
    from jarvis.identity import Principal
    from jarvis.llm.embedders import LexicalEmbedder

    s, app, user_ids, heavy = big_db
    owner = create_engine(s.owner_url())
    repo = MemoryIndexRepository(owner)
    try:
        report = MemoryIndexes(repo).reconcile(min_rows=HEAVY)
        assert len(report.created) == 1 and heavy.hex in report.created[0]

        class Fixed(LexicalEmbedder):
            """Returns the test's query vector: the service's path with our random data."""

            model_name = MODEL
            dim = DIM
            vector: list[float] = []

            def embed(self, texts: list[str]) -> list[list[float]]:
                return [list(self.vector) for _ in texts]

        embedder = Fixed(dim=DIM)
        services = build_services(
            s, engine=app, embedder=embedder, recover_runs=False, background=False
        )
        rng = random.Random(5)
        recall: list[float] = []
        hybrid_recall: list[float] = []
        for uid, ann in ((heavy, True), (user_ids[0], False)):
            principal = Principal(user_id=uid, email="x@example.com", role="user")
            with services.uow(principal) as w:
                assert w.memories.search_plan(uid, MODEL).ann_index is ann
            for _ in range(20 if ann else 5):
                embedder.vector = _query_vector(rng)
                truth = _oracle(owner, uid, embedder.vector, K)
                got = [h.id for h in services.memory.search(principal, "q", k=K)]
                # hybrid with a word no memory holds: its ranking is the vector one
                mixed = [h.id for h in services.memory.search(principal, "q", k=K, mode="hybrid")]
                recall.append(len(set(got) & set(truth)) / K) if ann else None
                hybrid_recall.append(len(set(mixed) & set(truth)) / K) if ann else None
                if not ann:
                    assert set(got) == set(truth) == set(mixed)
        assert sum(recall) / len(recall) >= 0.98
        assert sum(hybrid_recall) / len(hybrid_recall) >= 0.98
        # the user falls below half the threshold: the index is dropped again
        report = MemoryIndexes(repo).reconcile(min_rows=HEAVY * 3)
        assert len(report.dropped) == 1 and repo.existing() == []
    finally:
        owner.dispose()
