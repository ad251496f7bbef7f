"""Embeddings of a user: zero vectors, moves between models (memories and graph), the catch-up
after the default changed, and migration 0012's data step."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text

from jarvis.bootstrap import Services, memory_maintenance
from jarvis.config import Settings
from jarvis.db.migrate import downgrade, upgrade
from jarvis.db.repositories.memory import _SEMANTIC_SQL
from jarvis.errors import JarvisError
from jarvis.identity import Principal
from jarvis.llm.embedders import LEXICAL_MODEL, OPENAI_MODEL, WORDLLAMA_MODEL, LexicalEmbedder
from tests import factories


class ZeroForSome(LexicalEmbedder):
    """Lexical vectors, except the zero vector for texts starting with "nothing"."""

    model_name = "lexical-zero-test"

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [
            [0.0] * self.dim if t.startswith("nothing") else v
            for t, v in zip(texts, super().embed(texts), strict=True)
        ]


def test_a_zero_vector_is_never_stored(services: Services) -> None:
    alice = factories.user(services.uow, "alice")
    with pytest.raises(JarvisError), services.uow(alice) as uow:
        uow.memories.add(
            user_id=alice.user_id, content="x", embedding=[0.0] * 256, embedding_model="m"
        )
        uow.commit()
    services.memory.embedders.registry.register(ZeroForSome())
    services.memory.reembed(alice, "lexical-zero-test")
    with pytest.raises(JarvisError, match="nothing to search by"):
        services.memory.store(alice, "nothing here")


def test_no_score_is_ever_nan(services: Services) -> None:
    alice = factories.user(services.uow, "alice")
    services.memory.embedders.registry.register(ZeroForSome())
    services.memory.reembed(alice, "lexical-zero-test")
    services.memory.store(alice, "the nothing gala is on friday")
    services.memory.store(alice, "buy milk")
    # a query without a vector finds nothing by meaning, and by text only in hybrid mode
    assert services.memory.search(alice, "nothing at all", k=5, min_score=0.99) == []
    hits = services.memory.search(alice, "nothing gala", k=5, mode="hybrid")
    assert [h.content for h in hits] == ["the nothing gala is on friday"]
    assert all(math.isfinite(h.score) for h in hits) and hits[0].vector_rank is None
    for mode in ("semantic", "hybrid"):
        for h in services.memory.search(alice, "milk", k=5, mode=mode):  # type: ignore[arg-type]
            assert math.isfinite(h.score) and math.isfinite(float(str(h.to_dict()["score"])))


def test_the_sql_drops_nan_distances_even_for_a_legacy_zero_row(settings: Settings) -> None:
    """Issue 14: a zero vector's distance is NaN, which sorts above every number and passed
    any minimum score. Even with the CHECK out of the way, the search never returns it."""
    owner = create_engine(settings.owner_url())
    try:
        with owner.connect() as conn:
            trans = conn.begin()
            uid = conn.scalar(
                text("insert into users (email, password_hash) values (:e, 'x') returning id"),
                {"e": f"nan-{uuid.uuid4().hex[:8]}@example.com"},
            )
            conn.execute(text("alter table memories drop constraint ck_memories_embedding_nonzero"))
            conn.execute(
                text(
                    "insert into memories (user_id, content, embedding, embedding_model) values "
                    "(:u, 'zero', array_fill(0, ARRAY[3])::halfvec, 'm3'), "
                    "(:u, 'one', '[1,0,0]'::halfvec, 'm3')"
                ),
                {"u": uid},
            )
            params = {"user_id": uid, "model": "m3", "k": 5}
            rows = conn.execute(_SEMANTIC_SQL, {**params, "query": [1, 0, 0], "min_score": 0.5})
            assert [(r.content, r.score) for r in rows] == [("one", 1.0)]
            rows = conn.execute(_SEMANTIC_SQL, {**params, "query": [0, 0, 0], "min_score": -1.0})
            assert list(rows) == []
            trans.rollback()
    finally:
        owner.dispose()


def test_a_move_takes_memories_and_graph_along_and_can_be_resumed(services: Services) -> None:
    class Other(LexicalEmbedder):
        model_name = "lexical-move-test"

    alice = factories.user(services.uow, "alice")
    for i in range(5):
        services.memory.store(alice, f"memory number {i}")
    services.knowledge_graph.create_entity(alice, "Lisbon", "city", "capital of Portugal")
    services.knowledge_graph.add_fact(alice, "Carol", "lives_in", "Lisbon")
    services.memory.embedders.registry.register(Other())

    class Stop(Exception):
        pass

    def stop_after_first_batch(done: int, total: int) -> None:
        if done > 0:
            raise Stop

    with pytest.raises(Stop):
        services.memory.reembed(
            alice, "lexical-move-test", progress=stop_after_first_batch, batch_size=2
        )
    # interrupted: the choice is recorded, 2 rows moved; new rows already use the new model
    info = services.memory.embedding_info(alice)
    assert info.model_name == "lexical-move-test"
    assert info.counts == {"lexical-move-test": 2, WORDLLAMA_MODEL: 3}
    seen: list[tuple[int, int]] = []
    report = services.memory.reembed(
        alice, "lexical-move-test", progress=lambda d, t: seen.append((d, t)), batch_size=2
    )
    assert (report.memories, report.entities, report.moved, report.total) == (3, 2, 5, 5)
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert services.memory.embedding_info(alice).counts == {"lexical-move-test": 5}
    # the graph search compares vectors of the user's model
    hits = services.knowledge_graph.search_entities(alice, "capital Portugal", mode="meaning")
    assert hits and hits[0].entity.name == "Lisbon"
    with services.uow(alice) as uow:
        assert uow.graph.count_entities_not_in_model(alice.user_id, "lexical-move-test") == 0
    # back to the default: the choice is cleared (the user follows the instance default)
    services.memory.reembed(alice, "wordllama")
    with services.uow(alice) as uow:
        assert uow.memories.chosen_model(alice.user_id) is None


def test_a_move_also_takes_rows_written_in_the_old_model_behind_it(services: Services) -> None:
    """A move reads its batches by id, each from where the last ended; a row written in the old
    model meanwhile with an id it has passed (a write that chose the model before the move
    did) is found by a last pass from the start: nothing is left behind."""

    class Other(LexicalEmbedder):
        model_name = "lexical-behind-test"

    alice = factories.user(services.uow, "alice")
    for i in range(6):
        services.memory.store(alice, f"memory number {i}")
    services.memory.embedders.registry.register(Other())
    behind = uuid.UUID(int=1)  # before every other id

    def write_behind(done: int, total: int) -> None:
        if done == 2:  # the first batch is moved: the cursor is past the start
            with services.uow(alice) as w:
                row = w.memories.add(
                    user_id=alice.user_id,
                    content="written meanwhile",
                    embedding=None,
                    embedding_model=WORDLLAMA_MODEL,
                )
                w.session.execute(
                    text("UPDATE memories SET id = :new WHERE id = :old"),
                    {"new": behind, "old": row.id},
                )
                w.commit()

    report = services.memory.reembed(
        alice, "lexical-behind-test", progress=write_behind, batch_size=2
    )
    assert (report.memories, report.moved) == (7, 7)
    assert services.memory.embedding_info(alice).counts == {"lexical-behind-test": 7}
    found = services.memory.search(alice, "written meanwhile", k=1)
    assert found[0].id == behind


def test_catch_up_moves_the_users_who_follow_the_default(
    fresh_database: Callable[[], Settings],
) -> None:
    s = fresh_database()
    owner = create_engine(s.owner_url())
    try:
        with owner.begin() as conn:
            ids = {}
            for name, chosen in (("follower", None), ("chooser", LEXICAL_MODEL)):
                ids[name] = conn.scalar(
                    text(
                        "insert into users (email, password_hash, embedding_model) "
                        "values (:e, 'x', :m) returning id"
                    ),
                    {"e": f"{name}@example.com", "m": chosen},
                )
            lexical = LexicalEmbedder()
            for uid in ids.values():
                for content in ("I am allergic to peanuts", "my sister lives in Lisbon"):
                    conn.execute(
                        text(
                            "insert into memories (user_id, content, embedding, embedding_model) "
                            "values (:u, :c, CAST(:v AS halfvec), :m)"
                        ),
                        {
                            "u": uid,
                            "c": content,
                            "v": str(lexical.embed([content])[0]),
                            "m": LEXICAL_MODEL,
                        },
                    )
                conn.execute(
                    text(
                        "insert into kg_entities (user_id, name, embedding_model) "
                        "values (:u, 'Lisbon', null)"
                    ),
                    {"u": uid},
                )
        progress: list[tuple[str, int, int]] = []
        with memory_maintenance(s) as maintenance:
            report = maintenance.embeddings.catch_up(
                progress=lambda e, d, t: progress.append((e, d, t))
            )
            assert (report.users, report.rows, report.model_name) == (1, 3, WORDLLAMA_MODEL)
            assert maintenance.embeddings.catch_up().users == 0  # nothing left: idempotent
        assert progress[-1] == ("follower@example.com", 3, 3)
        with owner.connect() as conn:
            models = dict(
                conn.execute(
                    text(
                        "select u.email, string_agg(distinct m.embedding_model, ',') "
                        "from users u join memories m on m.user_id = u.id group by u.email"
                    )
                ).all()
            )
            dims = conn.scalar(
                text("select vector_dims(embedding) from kg_entities where user_id = :u"),
                {"u": ids["follower"]},
            )
        assert models == {
            "follower@example.com": WORDLLAMA_MODEL,
            "chooser@example.com": LEXICAL_MODEL,
        }
        assert dims == 256
        # the moved user's search now works by meaning
        from jarvis.bootstrap import build_services

        services = build_services(s, recover_runs=False, background=False)
        follower = Principal(user_id=ids["follower"], email="follower@example.com", role="user")
        hits = services.memory.search(follower, "food I must avoid", k=1)
        assert hits[0].content == "I am allergic to peanuts"
        services.engine.dispose()
    finally:
        owner.dispose()


def test_migration_0012_keeps_chosen_models_and_nulls_zero_vectors(
    fresh_database: Callable[[], Settings],
) -> None:
    s = fresh_database()
    downgrade(s, "0010")
    owner = create_engine(s.owner_url())
    try:
        with owner.begin() as conn:
            users = {}
            for name in ("lex", "oai"):
                users[name] = conn.scalar(
                    text("insert into users (email, password_hash) values (:e, 'x') returning id"),
                    {"e": f"{name}@example.com"},
                )
            rows = [
                (users["lex"], "a", "array_fill(0.1, ARRAY[384])", LEXICAL_MODEL, "1 day"),
                (users["lex"], "zero", "array_fill(0, ARRAY[384])", LEXICAL_MODEL, "0 days"),
                (users["oai"], "b", "array_fill(0.1, ARRAY[384])", LEXICAL_MODEL, "2 days"),
                (users["oai"], "c", "array_fill(0.2, ARRAY[384])", OPENAI_MODEL, "1 day"),
            ]
            for uid, content, vec, model, age in rows:
                conn.execute(
                    text(
                        "insert into memories (user_id, content, embedding, embedding_model, "
                        f"created_at) values (:u, :c, {vec}::vector, :m, now() - interval '{age}')"
                    ),
                    {"u": uid, "c": content, "m": model},
                )
        upgrade(s)
        with owner.connect() as conn:
            chosen = dict(conn.execute(text("select email, embedding_model from users")).all())
            zero = conn.scalar(
                text("select embedding is null from memories where content = 'zero'")
            )
            kept = conn.scalar(
                text("select vector_dims(embedding) from memories where content = 'c'")
            )
            hnsw = conn.scalar(
                text("select count(*) from pg_indexes where indexdef ilike '%hnsw%'")
            )
        assert chosen == {"lex@example.com": None, "oai@example.com": OPENAI_MODEL}
        assert zero is True and kept == 384 and hnsw == 0
    finally:
        owner.dispose()
