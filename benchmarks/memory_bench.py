"""Memory search at scale (not a test): 1,000,000 memories.

Users: one with 100,000 memories, one with 10,000, and 890 with 1,000 each (rows inserted in
random order: a user's memories are scattered over the heap, as when they accrue over time).
Vectors: the 100k user's are wordllama embeddings of generated sentences (structured like real
memories), the others random 256-d; all ``halfvec``. Compared, per user, p50 over random queries
and recall@10 against the exact answer, by id and by similarity (as ann-benchmarks counts it: a
result as similar as the exact 10th is right; the generated memories repeat some sentences, and
of two equal rows at the 10th place either one is a right answer):

* ours           ``MemoryRepository.semantic`` as the app role with row-level security: exact
                 over the covering index for the 10k user, the user's own HNSW index (built by
                 ``MemoryIndexes.reconcile``) for the 100k user;
* ours, exact    the exact plan for the 100k user too (what it gets without its index);
* previous exact the exact statement this one replaced (0012's: every distance through the top-k
                 sort, the query vector sent as text), same session, same queries, interleaved;
* planned        today's bounded statement sent as text, as before migration 0025 made it a SQL
                 function whose plan the connection keeps: planned on every search;
* plain          ``ORDER BY embedding <=> :query LIMIT k`` over the user's rows (``NAIVE_SQL``:
                 the floor the issue measured, 4.7 ms), for reference;
* before         the plan this replaces: 384-d ``vector`` rows in the covering index, read in
                 a MATERIALIZED CTE (a side table ``memories_before`` with the same users and
                 row counts);
* (not timed) a shared HNSW over everyone's rows: fast and wrong, shown by
                 ``tests/integration/test_memory_scale.py``.

Wall times are p50 over the queries; next to the exact figures the server's own CPU time per
search (``/proc/<backend>/schedstat``) is printed too: on a machine shared with other work the
wall clock mostly measures the others, the server's CPU time much less.

    .venv/bin/python benchmarks/memory_bench.py                      # ~15 min the first time
    .venv/bin/python benchmarks/memory_bench.py --keep /tmp/jarvis-memory-bench   # reuse data

Targets (issue 16): 10k user in a 1M-row table <= 3 ms; 100k user <= 30 ms, recall@10 >= 0.98.
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

from pgvector.sqlalchemy import HALFVEC  # noqa: E402
from sqlalchemy import Float, Integer, String, bindparam, create_engine, text  # noqa: E402
from sqlalchemy.dialects.postgresql import UUID  # noqa: E402

from benchmarks._db import benchmark_database, p50, percentile, ratio_line  # noqa: E402
from benchmarks.paraphrases import synthetic_memories  # noqa: E402
from jarvis.db.engine import create_app_engine  # noqa: E402
from jarvis.db.repositories.memory import EXACT_SAMPLE, NAIVE_SQL, MemoryRepository  # noqa: E402
from jarvis.db.repositories.memory_indexes import MemoryIndexRepository  # noqa: E402
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402
from jarvis.db.vector_params import HalfvecParam  # noqa: E402
from jarvis.llm.embedders import WORDLLAMA_MODEL, WordLlamaEmbedder  # noqa: E402
from jarvis.services.memory import MemoryIndexes  # noqa: E402

K = 10
RANDOM_MODEL = "random-256"

BEFORE_SQL = """
    WITH mine AS MATERIALIZED (
        SELECT id, embedding <=> CAST(:query AS vector(384)) AS distance
        FROM memories_before
        WHERE user_id = :user_id AND embedding_model = :model
    ),
    top AS (
        SELECT id, distance FROM mine WHERE 1 - distance >= -1
        ORDER BY distance, id LIMIT :k
    )
    SELECT m.id, m.content, 1 - top.distance AS score
    FROM top JOIN memories_before m ON m.id = top.id ORDER BY top.distance, m.id
"""

# The exact statement of 0012 (what the 10k user got before the bound and the binary vector).
PREVIOUS_EXACT_SQL = text(
    """
    WITH top AS (
        SELECT id, embedding <=> :query AS distance
        FROM memories
        WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL
        ORDER BY embedding <=> :query, id
        LIMIT :k
    )
    SELECT m.id, m.content, m.embedding_model, m.metadata, m.source, m.created_at,
           1 - top.distance AS score
    FROM top JOIN memories m ON m.id = top.id
    WHERE top.distance <> 'NaN'::float8 AND 1 - top.distance >= :min_score
    ORDER BY top.distance, m.id
    """
).bindparams(
    bindparam("query", type_=HALFVEC()),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
    bindparam("min_score", type_=Float()),
)

# The bounded statement of ``jarvis_memory_nearest`` (migration 0025) sent as text, as the
# repository sent it before: planned on every search (psycopg forgets its prepared statements
# at every ROLLBACK, and a search's unit of work ends with one).
PLANNED_SQL = text(
    f"""
    WITH sample AS (
        SELECT embedding <=> :query AS distance
        FROM memories
        WHERE user_id = :user_id AND embedding_model = :model
        LIMIT {EXACT_SAMPLE}
    ),
    bound AS (
        SELECT distance FROM sample ORDER BY distance LIMIT 1 OFFSET CAST(:k AS integer) - 1
    ),
    top AS (
        SELECT id, embedding <=> :query AS distance
        FROM memories
        WHERE user_id = :user_id AND embedding_model = :model
              AND (embedding <=> :query) <= coalesce((SELECT distance FROM bound), 'Infinity')
        ORDER BY 2, id
        LIMIT :k
    )
    SELECT m.id, m.content, m.embedding_model, m.metadata, m.source, m.created_at,
           1 - top.distance AS score
    FROM top JOIN memories m ON m.id = top.id
    WHERE top.distance <> 'NaN'::float8 AND 1 - top.distance >= :min_score
    ORDER BY top.distance, m.id
    """
).bindparams(
    bindparam("query", type_=HalfvecParam()),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("model", type_=String()),
    bindparam("k", type_=Integer()),
    bindparam("min_score", type_=Float()),
)


def log(msg: str) -> None:
    print(msg, flush=True)


def server_cpu_ns(pid: int) -> int | None:
    """CPU time the server process ``pid`` has used (ns; Linux, same host), else None.

    On a shared machine wall times mostly measure the other processes; the server's own CPU
    time per search does not (much), so the benchmark prints both."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_note(ours: list[float], other: list[float]) -> str:
    if not ours or not other:
        return ""
    return f"; server CPU {p50(ours):.2f} ms vs {p50(other):.2f} ms ({p50(other) / p50(ours):.2f}x)"


def load(owner: Any, big: int, mid: int, users: int, per_user: int) -> dict[str, uuid.UUID]:
    with owner.connect() as conn:
        found = dict(
            conn.execute(
                text("SELECT email, id FROM users WHERE email IN ('big@bench', 'mid@bench')")
            ).all()
        )
        if len(found) == 2 and conn.scalar(text("SELECT to_regclass('memories_before')")):
            n = conn.scalar(text("SELECT count(*) FROM memories"))
            log(f"reusing {n:,} memories")
            return {"big": found["big@bench"], "mid": found["mid@bench"]}
    t0 = time.perf_counter()
    sentences = synthetic_memories(big, seed=1)
    vectors = WordLlamaEmbedder().embed(sentences)
    log(f"embedded {big:,} generated memories with wordllama in {time.perf_counter() - t0:.1f} s")
    with owner.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash) SELECT 'u' || g || '@bench', 'x' "
                "FROM generate_series(1, :n) g"
            ),
            {"n": users},
        )
        ids = {
            name: conn.scalar(
                text("INSERT INTO users (email, password_hash) VALUES (:e, 'x') RETURNING id"),
                {"e": f"{name}@bench"},
            )
            for name in ("big", "mid")
        }
        # the big user's rows through COPY (a text vector literal per row)
        raw = conn.connection.driver_connection
        with (
            raw.cursor() as cur,
            cur.copy(
                "COPY memories (user_id, content, embedding, embedding_model) FROM STDIN"
            ) as copy,
        ):
            for sentence, vec in zip(sentences, vectors, strict=True):
                copy.write_row(
                    (
                        ids["big"],
                        sentence,
                        "[" + ",".join(f"{x:.5f}" for x in vec) + "]",
                        WORDLLAMA_MODEL,
                    )
                )
        conn.execute(
            text(
                """
            INSERT INTO memories (user_id, content, embedding, embedding_model)
            SELECT u.id, 'memory ' || g.i,
                   ARRAY(SELECT random() - 0.5 + 0 * g.i FROM generate_series(1, 256))::halfvec,
                   :model
            FROM users u, generate_series(1, CASE WHEN u.email = 'mid@bench' THEN :mid
                                                  ELSE :per_user END) g(i)
            WHERE u.email <> 'big@bench'
            ORDER BY random()
            """
            ),
            {"mid": mid, "per_user": per_user, "model": RANDOM_MODEL},
        )
    log(f"loaded memories in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    with owner.begin() as conn:
        # The schema before 0012: 384-d float vectors in the same covering index.
        conn.execute(
            text(
                """
            CREATE TABLE memories_before AS
            SELECT id, user_id, content, embedding_model,
                   ARRAY(SELECT random() - 0.5 + 0 * length(content)
                         FROM generate_series(1, 384))::vector(384) AS embedding
            FROM memories ORDER BY random()
            """
            )
        )
        conn.execute(
            text(
                "CREATE INDEX ON memories_before (user_id, embedding_model) INCLUDE (id, embedding)"
            )
        )
        conn.execute(text("CREATE UNIQUE INDEX ON memories_before (id)"))
        conn.execute(text("GRANT SELECT ON memories_before TO jarvis_app"))
    log(f"built the 384-d 'before' table in {time.perf_counter() - t0:.1f} s")
    with owner.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE memories"))
        conn.execute(text("VACUUM ANALYZE memories_before"))
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--mid", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=890)
    parser.add_argument("--per-user", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--keep", help="reuse (and keep) the database in this folder")
    args = parser.parse_args()
    rng = random.Random(42)
    with benchmark_database(args.keep) as settings:
        owner = create_engine(settings.owner_url())
        ids = load(owner, args.big, args.mid, args.users, args.per_user)
        t0 = time.perf_counter()
        report = MemoryIndexes(MemoryIndexRepository(owner)).reconcile(
            min_rows=args.big // 2, progress=log
        )
        if report.created:
            log(f"per-user HNSW built in {time.perf_counter() - t0:.1f} s")
        app = create_app_engine(settings)
        uow = UnitOfWorkFactory(app)
        queries = [
            WordLlamaEmbedder().embed([q])[0] for q in synthetic_memories(args.samples, seed=99)
        ]
        results: list[str] = []
        for name, model, qs in (
            (
                "mid",
                RANDOM_MODEL,
                [[rng.random() - 0.5 for _ in range(256)] for _ in range(args.samples)],
            ),
            ("big", WORDLLAMA_MODEL, queries),
        ):
            uid = ids[name]

            def run(
                q: list[float],
                ann: bool,
                uid: uuid.UUID = uid,
                model: str = model,
                cpu: list[float] | None = None,
            ) -> tuple[float, list[uuid.UUID], list[float]]:
                with uow.for_user_id(uid) as w:
                    # begin + RLS user outside the timing
                    pid = w.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    repo = MemoryRepository(w.session)
                    c0 = server_cpu_ns(pid)
                    t0 = time.perf_counter()
                    rows = repo.semantic(uid, model, q, k=K, ann_dims=256 if ann else None)
                    ms = (time.perf_counter() - t0) * 1000
                    c1 = server_cpu_ns(pid)
                    if cpu is not None and c0 is not None and c1 is not None:
                        cpu.append((c1 - c0) / 1e6)
                    return ms, [r.id for r in rows], [r.score for r in rows]

            def before(q: list[float], uid: uuid.UUID = uid, model: str = model) -> float:
                with uow.for_user_id(uid) as w:
                    w.session.execute(text("SELECT 1"))
                    q384 = q + [0.0] * (384 - len(q))
                    t0 = time.perf_counter()
                    w.session.execute(
                        text(BEFORE_SQL),
                        {"query": str(q384), "user_id": uid, "model": model, "k": K},
                    ).all()
                    return (time.perf_counter() - t0) * 1000

            def statement(
                sql: Any,
                q: list[float],
                uid: uuid.UUID = uid,
                model: str = model,
                cpu: list[float] | None = None,
            ) -> tuple[float, list[uuid.UUID]]:
                with uow.for_user_id(uid) as w:
                    pid = w.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    params = {"query": q, "user_id": uid, "model": model, "k": K}
                    if sql is PREVIOUS_EXACT_SQL or sql is PLANNED_SQL:
                        params["min_score"] = -1.0
                    c0 = server_cpu_ns(pid)
                    t0 = time.perf_counter()
                    ids = [r.id for r in w.session.execute(sql, params)]
                    ms = (time.perf_counter() - t0) * 1000
                    c1 = server_cpu_ns(pid)
                    if cpu is not None and c0 is not None and c1 is not None:
                        cpu.append((c1 - c0) / 1e6)
                    return ms, ids

            rows = args.mid if name == "mid" else args.big
            exact_ms, truth, previous_ms, plain_ms, planned_ms = [], [], [], [], []
            kth_scores: list[float] = []  # the exact answer's k-th similarity, per query
            exact_cpu: list[float] = []
            previous_cpu: list[float] = []
            plain_cpu: list[float] = []
            planned_cpu: list[float] = []
            for q in qs:
                run(q, False)
                statement(PREVIOUS_EXACT_SQL, q)
                statement(NAIVE_SQL, q)
                statement(PLANNED_SQL, q)
            same = same_planned = 0
            for q in qs:  # interleaved: the same load for each
                ms, got, scores = run(q, False, cpu=exact_cpu)
                exact_ms.append(ms)
                truth.append(got)
                kth_scores.append(scores[-1])
                ms, previous_ids = statement(PREVIOUS_EXACT_SQL, q, cpu=previous_cpu)
                previous_ms.append(ms)
                same += previous_ids == got
                ms, planned_ids = statement(PLANNED_SQL, q, cpu=planned_cpu)
                planned_ms.append(ms)
                same_planned += planned_ids == got
                plain_ms.append(statement(NAIVE_SQL, q, cpu=plain_cpu)[0])
            log(
                f"user with {rows:,} memories: exact {p50(exact_ms):.2f} ms, previous exact "
                f"statement {p50(previous_ms):.2f} ms (same top {K} for {same}/{len(qs)} "
                f"queries), the same statement planned per search {p50(planned_ms):.2f} ms "
                f"(same top {K} for {same_planned}/{len(qs)}), plain ORDER BY ... LIMIT "
                f"{p50(plain_ms):.2f} ms"
            )
            results.append(
                ratio_line(
                    f"{rows:,}-memory user, exact, this statement",
                    p50(exact_ms),
                    p50(planned_ms),
                    "the same statement sent as text, planned per search (before 0025)",
                )
                + cpu_note(exact_cpu, planned_cpu)
            )
            results.append(
                ratio_line(
                    f"{rows:,}-memory user, exact, this statement",
                    p50(exact_ms),
                    p50(previous_ms),
                    "before: 0012's exact statement, same run",
                )
                + cpu_note(exact_cpu, previous_cpu)
            )
            results.append(
                ratio_line(
                    f"{rows:,}-memory user, exact, this statement",
                    p50(exact_ms),
                    p50(plain_ms),
                    "plain ORDER BY embedding <=> q LIMIT 10",
                )
                + cpu_note(exact_cpu, plain_cpu)
            )
            before_ms = [before(q) for q in qs]
            if name == "big":
                ann_ms, recall, tie_recall = [], [], []
                for q in qs:
                    run(q, True)
                for q, t, kth in zip(qs, truth, kth_scores, strict=True):
                    ms, got, scores = run(q, True)
                    ann_ms.append(ms)
                    recall.append(len(set(got) & set(t)) / K)
                    # ann-benchmarks' measure: a result as similar as the exact k-th counts
                    # (a memory stored twice is two rows with one score: either one is right)
                    tie_recall.append(sum(score >= kth - 1e-6 for score in scores) / K)
                r10 = sum(recall) / len(recall)
                tie_r10 = sum(tie_recall) / len(tie_recall)
                log(
                    f"user with {rows:,} memories: own HNSW {p50(ann_ms):.2f} ms "
                    f"(p95 {percentile(ann_ms, 95):.2f}) recall@10 {r10:.3f} by id, "
                    f"{tie_r10:.3f} by similarity (a tie with the "
                    f"exact 10th counts); exact {p50(exact_ms):.2f} ms; before "
                    f"{p50(before_ms):.2f} ms"
                )
                results.append(
                    ratio_line(
                        f"{rows:,}-memory user, own HNSW (recall@10 {r10:.3f} by id, "
                        f"{tie_r10:.3f} by similarity)",
                        p50(ann_ms),
                        p50(before_ms),
                        "before: exact 384-d vector",
                        "<= 30 ms, recall >= 0.98",
                    )
                )
                results.append(
                    ratio_line(
                        f"{rows:,}-memory user, exact halfvec(256)",
                        p50(exact_ms),
                        p50(before_ms),
                        "before: exact 384-d vector",
                    )
                )
            else:
                log(
                    f"user with {rows:,} memories: exact {p50(exact_ms):.2f} ms "
                    f"(p95 {percentile(exact_ms, 95):.2f}) recall@10 1.000; before {p50(before_ms):.2f} ms"
                )
                results.append(
                    ratio_line(
                        f"{rows:,}-memory user in {args.big + args.mid + args.users * args.per_user:,} rows, exact (recall@10 1.0)",
                        p50(exact_ms),
                        p50(before_ms),
                        "before: exact 384-d vector",
                        "<= 3 ms",
                    )
                )
        log("")
        for line in results:
            log(line)
        app.dispose()
        owner.dispose()


if __name__ == "__main__":
    main()
