"""Moving a user to another embedder (not a test): re-embedding their memories and graph entities.

A move (``jarvis.services.memory.embeddings.move_user``: a user switching embedders, a background
job; the catch-up after the instance default changed, at ``jarvis up``) re-embeds the user's
rows batch by batch. Compared, for one user with 50,000 memories and 50,000 entities (wordllama,
batches of 500, as the catch-up does), each move re-embedding every row:

* ours      ``move_user``: each batch read by id from where the last ended (and one pass from
            the start for rows written behind it), its vectors written in binary by one
            UPDATE sent for the whole batch;
* before    the loop it replaced (2026-12-04): each batch the first rows by id not yet moved
            (an index scan reading past every row already moved: quadratic in the user's
            rows), its vectors written by the ORM's bulk UPDATE, as text.

    .venv/bin/python benchmarks/reembed_bench.py [--memories 50000 --entities 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, text, update  # noqa: E402

from benchmarks._db import benchmark_database, ratio_line  # noqa: E402
from jarvis.db.engine import create_app_engine, create_owner_engine  # noqa: E402
from jarvis.db.tables import KgEntity, Memory  # noqa: E402
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402
from jarvis.identity import Principal  # noqa: E402
from jarvis.llm.embedders import WordLlamaEmbedder  # noqa: E402
from jarvis.services.memory.embeddings import entity_text, move_user, vectors_or_none  # noqa: E402

BATCH = 500


def move_before(uow: UnitOfWorkFactory, principal: Principal, model: str) -> int:
    """The loop ``move_user`` replaced, storing the vectors under ``model``."""
    embedder = WordLlamaEmbedder()
    user_id = principal.user_id
    moved = 0
    while True:
        with uow(principal) as w:
            batch = w.session.execute(
                select(Memory.id, Memory.content)
                .where(Memory.user_id == user_id, Memory.embedding_model != model)
                .order_by(Memory.id)
                .limit(BATCH)
            ).all()
            if not batch:
                break
            vectors = vectors_or_none(embedder, [r.content for r in batch])
            w.session.execute(
                update(Memory),
                [
                    {"id": r.id, "embedding": v, "embedding_model": model}
                    for r, v in zip(batch, vectors, strict=True)
                ],
            )
            w.commit()
        moved += len(batch)
    while True:
        with uow(principal) as w:
            rows = w.session.execute(
                select(KgEntity.id, KgEntity.name, KgEntity.description)
                .where(
                    KgEntity.user_id == user_id, KgEntity.embedding_model.is_distinct_from(model)
                )
                .order_by(KgEntity.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            vectors = vectors_or_none(
                embedder, [entity_text(r.name, r.description or "") for r in rows]
            )
            w.session.execute(
                update(KgEntity),
                [
                    {"id": r.id, "embedding": v, "embedding_model": model}
                    for r, v in zip(rows, vectors, strict=True)
                ],
            )
            w.commit()
        moved += len(rows)
    return moved


class _Renamed(WordLlamaEmbedder):
    """wordllama's vectors under another model name: a move to it re-embeds every row."""

    model_name = "wordllama-bench-other"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memories", type=int, default=50_000)
    parser.add_argument("--entities", type=int, default=50_000)
    args = parser.parse_args()
    with benchmark_database() as settings:
        owner = create_owner_engine(settings)
        with owner.begin() as conn:
            user_id = conn.scalar(
                text(
                    "INSERT INTO users (email, password_hash) VALUES ('move@bench', 'x') RETURNING id"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO memories (id, user_id, content, embedding_model) "
                    "SELECT gen_random_uuid(), :u, 'memory ' || g || ': met ' || md5(g::text) || ' at the market', "
                    "'old-model' FROM generate_series(1, :n) g ORDER BY random()"
                ),
                {"u": user_id, "n": args.memories},
            )
            conn.execute(
                text(
                    "INSERT INTO kg_entities (id, user_id, name, type, description, embedding_model) "
                    "SELECT gen_random_uuid(), :u, 'entity ' || md5(g::text), 'topic', "
                    "'a topic about ' || g, 'old-model' FROM generate_series(1, :n) g"
                ),
                {"u": user_id, "n": args.entities},
            )
        with owner.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        uow = UnitOfWorkFactory(create_app_engine(settings))
        principal = Principal(user_id=uuid.UUID(str(user_id)), email="move@bench", role="user")
        rows = args.memories + args.entities
        print(
            f"one user, {args.memories:,} memories and {args.entities:,} entities, batches of {BATCH}"
        )

        def ours(embedder: WordLlamaEmbedder) -> float:
            t0 = time.perf_counter()
            report = move_user(
                uow, principal, embedder, default_model="wordllama-default", batch_size=BATCH
            )
            assert report.moved == rows, report
            return (time.perf_counter() - t0) * 1000

        def before(model: str) -> float:
            t0 = time.perf_counter()
            assert move_before(uow, principal, model) == rows
            return (time.perf_counter() - t0) * 1000

        # Every move re-embeds every row: each goes to another model name than the last.
        t_ours = [ours(WordLlamaEmbedder())]
        t_before = [before("before-model-1")]
        t_ours.append(ours(_Renamed()))
        t_before.append(before("before-model-2"))
        for i, (a, b) in enumerate(zip(t_ours, t_before, strict=True), 1):
            print(
                ratio_line(
                    f"move {rows:,} rows, run {i}",
                    a,
                    b,
                    "batches reading past moved rows, vectors as text",
                )
            )
        print(f"ours: {rows / (min(t_ours) / 1000):,.0f} rows a second")


if __name__ == "__main__":
    main()
