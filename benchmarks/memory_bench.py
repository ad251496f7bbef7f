"""Memory search at scale: naive global-HNSW query vs the exact per-user plan.

100,000 memories: 1,000 users with 80 each, plus one user with 20,000. HNSW (m=16,
ef_construction=64, cosine) built once. For a sample of users we time and score (recall@10
against the exact answer):

* naive      ``WHERE user_id = :u ORDER BY embedding <=> :q LIMIT 10`` planned through the
             global HNSW index (what the planner picks without a per-user index);
* iterative  the same with ``hnsw.iterative_scan = relaxed_order``;
* heap exact an exact scan of the user's rows through the (user_id, created_at) B-tree;
* ours       ``MemoryRepository.semantic``: MATERIALIZED CTE over the covering
             ``(user_id, embedding_model) INCLUDE (id, embedding)`` index, as the app role
             with row-level security.

Run:  .venv/bin/python benchmarks/memory_bench.py  [--users 1000 --per-user 80 --big 20000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks._db import benchmark_database, percentile  # noqa: E402
from jarvis.db.engine import create_app_engine  # noqa: E402
from jarvis.db.repositories.memory import NAIVE_SQL, MemoryRepository  # noqa: E402
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402
from jarvis.llm.embedders import LEXICAL_MODEL  # noqa: E402

K = 10


def log(msg: str) -> None:
    print(msg, flush=True)


def load(owner: Any, users: int, per_user: int, big: int) -> tuple[list[uuid.UUID], uuid.UUID]:
    t0 = time.perf_counter()
    with owner.begin() as conn:
        conn.execute(text("DROP INDEX ix_memories_embedding_hnsw"))
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash) "
                "SELECT 'bench' || g || '@example.com', 'x' FROM generate_series(0, :n) g"
            ),
            {"n": users},
        )
        big_user = conn.scalar(text("SELECT id FROM users WHERE email = 'bench0@example.com'"))
        conn.execute(
            text(
                """
            INSERT INTO memories (user_id, content, embedding, embedding_model, created_at)
            SELECT u.id, 'memory ' || g.i,
                   ARRAY(SELECT random() - 0.5 + 0 * g.i FROM generate_series(1, 384))::vector(384),
                   :model, now() - (random() * interval '90 days')
            FROM users u, generate_series(1, CASE WHEN u.email = 'bench0@example.com'
                                                  THEN :big ELSE :per_user END) g(i)
            ORDER BY random()  -- memories arrive interleaved: a user's rows are scattered
            """
            ),
            {"per_user": per_user, "big": big, "model": LEXICAL_MODEL},
        )
    log(f"loaded {users * per_user + big:,} memories in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    with owner.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        conn.execute(
            text(
                "CREATE INDEX ix_memories_embedding_hnsw ON memories "
                "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
            )
        )
    log(f"HNSW build: {time.perf_counter() - t0:.1f} s")
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE memories"))
    with owner.connect() as conn:
        normal = list(
            conn.scalars(
                text("SELECT id FROM users WHERE email <> 'bench0@example.com' ORDER BY email")
            )
        )
    return normal, big_user


def qvec(rng: random.Random) -> list[float]:
    return [rng.random() - 0.5 for _ in range(384)]


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return (time.perf_counter() - t0) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=80)
    parser.add_argument("--big", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--big-samples", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(42)
    with benchmark_database() as settings:
        owner = create_engine(settings.owner_url())
        normal, big_user = load(owner, args.users, args.per_user, args.big)
        app = create_app_engine(settings)
        uow = UnitOfWorkFactory(app)
        cases = [
            (f"user with {args.per_user} rows", u, qvec(rng))
            for u in rng.sample(normal, args.samples)
        ]
        cases += [
            (f"user with {args.big} rows", big_user, qvec(rng)) for _ in range(args.big_samples)
        ]

        results: dict[tuple[str, str], dict[str, list[float]]] = {}

        def record(variant: str, label: str, ms: float, got: list[Any], truth: list[Any]) -> None:
            slot = results.setdefault((label, variant), {"ms": [], "recall": []})
            slot["ms"].append(ms)
            slot["recall"].append(len(set(got) & set(truth)) / K)

        truths: dict[int, list[uuid.UUID]] = {}
        heap_ms: dict[int, float] = {}
        with owner.connect() as conn:
            for i, (_, uid, q) in enumerate(cases):
                p = {"user_id": uid, "model": LEXICAL_MODEL, "query": q, "k": K}
                with conn.begin():
                    conn.execute(text("SET LOCAL enable_indexonlyscan = off"))
                    conn.execute(text("DROP INDEX ix_memories_user_model_embedding"))  # rolled back
                    conn.execute(text("SET LOCAL enable_indexscan = off"))
                    ms, ids = timed(lambda p=p: list(conn.scalars(NAIVE_SQL, p)))
                    truths[i], heap_ms[i] = ids, ms
                    conn.rollback()
        for i, (label, _, _) in enumerate(cases):
            record(
                "heap exact (bitmap via user_id B-tree)", label, heap_ms[i], truths[i], truths[i]
            )

        # Naive and iterative: the global HNSW is the planner's only index for the query.
        with owner.connect() as conn:
            trans = conn.begin()
            conn.execute(text("DROP INDEX ix_memories_user_model_embedding"))
            conn.execute(text("DROP INDEX ix_memories_user_id_created_at"))
            # At 100k rows the planner already prefers the HNSW scan (PERFORMANCE.md); on
            # smaller runs this makes it the only choice, so "naive" always means the trap.
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                conn.scalars(
                    text("EXPLAIN " + str(NAIVE_SQL)),
                    {
                        "user_id": cases[0][1],
                        "model": LEXICAL_MODEL,
                        "query": str(cases[0][2]),
                        "k": K,
                    },
                )
            )
            assert "ix_memories_embedding_hnsw" in plan, plan[:300]
            for i, (label, uid, q) in enumerate(cases):
                p = {"user_id": uid, "model": LEXICAL_MODEL, "query": q, "k": K}
                ms, ids = timed(lambda p=p: list(conn.scalars(NAIVE_SQL, p)))
                record("naive global HNSW", label, ms, ids, truths[i])
            conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            for i, (label, uid, q) in enumerate(cases):
                p = {"user_id": uid, "model": LEXICAL_MODEL, "query": q, "k": K}
                ms, ids = timed(lambda p=p: list(conn.scalars(NAIVE_SQL, p)))
                record("HNSW iterative_scan", label, ms, ids, truths[i])
            trans.rollback()

        # Ours, as the app role with RLS, one unit of work per query (what the service does).
        for i, (label, uid, q) in enumerate(cases):
            with uow.for_user_id(uid) as w:
                repo = MemoryRepository(w.session)
                w.session.execute(text("SELECT 1"))  # begin + set the RLS user outside the timing
                ms, rows = timed(
                    lambda repo=repo, uid=uid, q=q: repo.semantic(uid, LEXICAL_MODEL, q, k=K)
                )
            record(
                "ours: exact per-user (covering index)", label, ms, [r.id for r in rows], truths[i]
            )

        log("")
        log(
            f"{'case':<22} {'plan':<40} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10} {'rows/10':>8}"
        )
        summary: dict[tuple[str, str], tuple[float, float, float]] = {}
        for (label, variant), slot in results.items():
            p50, p95 = percentile(slot["ms"], 50), percentile(slot["ms"], 95)
            recall = sum(slot["recall"]) / len(slot["recall"])
            summary[(label, variant)] = (p50, p95, recall)
            log(f"{label:<22} {variant:<40} {p50:8.2f} {p95:8.2f} {recall:10.3f}")
        log("")
        for label in sorted({lbl for lbl, _ in summary}):
            ours = summary[(label, "ours: exact per-user (covering index)")]
            for variant in (
                "naive global HNSW",
                "HNSW iterative_scan",
                "heap exact (bitmap via user_id B-tree)",
            ):
                other = summary[(label, variant)]
                log(
                    f"{label}: {variant} / ours p50 time ratio = {other[0] / ours[0]:.2f} "
                    f"({other[0]:.2f} ms vs {ours[0]:.2f} ms); recall@10 {other[2]:.3f} vs ours {ours[2]:.3f}"
                )
        app.dispose()
        owner.dispose()


if __name__ == "__main__":
    main()
