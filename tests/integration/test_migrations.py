"""The schema: migrations up and down, models and migrations agree, indexes, the app role."""

from __future__ import annotations

import threading
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text

from jarvis.config import Settings
from jarvis.db.engine import create_app_engine
from jarvis.db.migrate import downgrade, upgrade
from jarvis.db.tables import USER_OWNED_TABLES, Base
from jarvis.db.uow import UnitOfWorkFactory
from tests import factories


def test_models_and_migrations_agree(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_hnsw_indexes_have_the_spec_parameters(fresh_database) -> None:  # type: ignore[no-untyped-def]
    """No shared HNSW (a per-user query through it loses rows, 0012): a heavy user's own
    index has the spec's parameters, cosine ops, and holds only that user's rows of one model."""
    from jarvis.db.repositories.memory_indexes import MemoryIndexRepository, ann_index_name
    from jarvis.services.memory import MemoryIndexes

    s: Settings = fresh_database()
    engine = create_engine(s.owner_url())
    try:
        with engine.begin() as conn:
            assert not conn.scalar(
                text("select count(*) from pg_indexes where indexdef ilike '%hnsw%'")
            )
            uid = conn.scalar(
                text(
                    "insert into users (email, password_hash) values ('h@x.org', 'x') returning id"
                )
            )
            conn.execute(
                text(
                    "insert into memories (user_id, content, embedding, embedding_model) "
                    "select :u, 'm' || g, array_fill(g::real, ARRAY[256])::halfvec, 'm256' "
                    "from generate_series(1, 30) g"
                ),
                {"u": uid},
            )
        report = MemoryIndexes(MemoryIndexRepository(engine)).reconcile(min_rows=20)
        assert report.created == [ann_index_name(uid, "m256")]
        with engine.connect() as conn:
            rows = dict(
                conn.execute(
                    text("select tablename, indexdef from pg_indexes where indexdef ilike '%hnsw%'")
                ).all()
            )
        assert set(rows) == {"memories"}
        assert "halfvec_cosine_ops" in rows["memories"] and "halfvec(256)" in rows["memories"]
        assert "m='16'" in rows["memories"] and "ef_construction='64'" in rows["memories"]
        assert str(uid) in rows["memories"] and "'m256'" in rows["memories"]
    finally:
        engine.dispose()


def test_every_user_owned_table_has_forced_rls(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = dict(
            conn.execute(
                text(
                    "select relname, relrowsecurity and relforcerowsecurity from pg_class "
                    "where relname = any(:names)"
                ),
                {"names": list(USER_OWNED_TABLES) + ["users"]},
            ).all()
        )
    assert set(rows) == set(USER_OWNED_TABLES) | {"users"}
    assert all(rows.values()), rows


def test_app_role_is_neither_owner_nor_superuser_nor_bypassrls(app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        me = conn.scalar(text("select current_user"))
        flags = conn.execute(
            text(
                "select rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = current_user"
            )
        ).one()
        owners = set(
            conn.scalars(text("select tableowner from pg_tables where schemaname = 'public'"))
        )
    assert me == "jarvis_app"
    assert tuple(flags) == (False, False, False)
    assert me not in owners


def test_upgrade_and_downgrade_round_trip(fresh_database) -> None:  # type: ignore[no-untyped-def]
    s: Settings = fresh_database()
    engine = create_engine(s.owner_url())
    try:
        downgrade(s, "base")
        with engine.connect() as conn:
            tables = set(
                conn.scalars(text("select tablename from pg_tables where schemaname='public'"))
            )
            ext = conn.scalar(text("select count(*) from pg_extension where extname = 'vector'"))
        assert tables <= {"alembic_version"}
        assert ext == 0
        upgrade(s)
        with engine.connect() as conn:
            assert conn.scalar(text("select count(*) from users")) == 0
    finally:
        engine.dispose()


def test_relations_written_before_0022_get_their_ends_names(fresh_database) -> None:  # type: ignore[no-untyped-def]
    """0022 copies each relation's ends' names into it (the walk reads a level by name from
    the relation indexes): relations that exist when it runs are filled in, and from then on
    the triggers keep them, as the app role too."""
    s: Settings = fresh_database()
    engine = create_engine(s.owner_url())
    try:
        downgrade(s, "0021")
        with engine.begin() as conn:
            uid = conn.scalar(
                text("insert into users (email, password_hash) values ('m@x.io', 'x') returning id")
            )
            ids = conn.scalars(
                text(
                    "insert into kg_entities (user_id, name, type) "
                    "select :u, n, 'thing' from unnest(array['Ada', 'Bob', 'Cy']) n returning id"
                ),
                {"u": uid},
            ).all()
            conn.execute(
                text(
                    "insert into kg_relations (user_id, source_id, target_id, type) "
                    "values (:u, :a, :b, 'knows'), (:u, :b, :c, 'knows'), (:u, :c, :c, 'is')"
                ),
                {"u": uid, "a": ids[0], "b": ids[1], "c": ids[2]},
            )
        upgrade(s)
        names = "select source_name || '>' || target_name from kg_relations order by 1"
        with engine.connect() as conn:
            assert conn.scalars(text(names)).all() == ["Ada>Bob", "Bob>Cy", "Cy>Cy"]
        app = create_engine(s.app_url())
        try:
            with app.begin() as conn:
                conn.execute(text("select set_config('app.user_id', :u, true)"), {"u": str(uid)})
                conn.execute(
                    text("update kg_entities set name = 'Cyd' where id = :c"), {"c": ids[2]}
                )
                conn.execute(
                    text(
                        "insert into kg_relations (user_id, source_id, target_id, type) "
                        "values (:u, :c, :a, 'knows')"
                    ),
                    {"u": uid, "a": ids[0], "c": ids[2]},
                )
        finally:
            app.dispose()
        with engine.connect() as conn:
            assert conn.scalars(text(names)).all() == ["Ada>Bob", "Bob>Cyd", "Cyd>Ada", "Cyd>Cyd"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("first", ["relation", "rename"])
def test_a_rename_and_a_new_relation_at_the_same_time_agree(settings: Settings, first: str) -> None:
    """The relation trigger share-locks the ends it reads, so whichever of the two commits
    last, the relation ends up with the entity's new name."""
    engine = create_app_engine(settings)
    try:
        uow = UnitOfWorkFactory(engine)
        who = factories.user(uow, f"namer-{uuid.uuid4().hex[:8]}")
        as_user = text("select set_config('app.user_id', :u, true)")
        with engine.begin() as conn:
            conn.execute(as_user, {"u": str(who.user_id)})
            a, b = conn.scalars(
                text(
                    "insert into kg_entities (user_id, name, type) "
                    "select :u, n, 'thing' from unnest(array['A', 'B']) n returning id"
                ),
                {"u": who.user_id},
            ).all()
        relate = text(
            "insert into kg_relations (user_id, source_id, target_id, type) values (:u, :a, :b, 'r')"
        )
        rename = text("update kg_entities set name = 'B2' where id = :b")

        def second() -> None:
            with engine.begin() as conn:
                conn.execute(as_user, {"u": str(who.user_id)})
                if first == "relation":
                    conn.execute(rename, {"b": b})
                else:
                    conn.execute(relate, {"u": who.user_id, "a": a, "b": b})

        with engine.connect() as conn, conn.begin():
            conn.execute(as_user, {"u": str(who.user_id)})
            if first == "relation":
                conn.execute(relate, {"u": who.user_id, "a": a, "b": b})
            else:
                conn.execute(rename, {"b": b})
            other = threading.Thread(target=second)
            other.start()
            other.join(0.5)
            assert other.is_alive()  # it waits for this transaction
        other.join(10)
        assert not other.is_alive()
        with engine.begin() as conn:
            conn.execute(as_user, {"u": str(who.user_id)})
            assert conn.scalars(text("select target_name from kg_relations")).all() == ["B2"]
    finally:
        engine.dispose()
