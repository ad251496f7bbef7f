"""A unit of work that only reads (``UnitOfWorkFactory.reads``): PostgreSQL refuses writes in it,
and it ends with COMMIT, so the statements it runs again and again stay prepared."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from jarvis.config import Settings
from jarvis.db.engine import create_app_engine
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import DatabaseError
from tests import factories

# One statement the explorer might run on every click (its text is what psycopg prepares).
READ = "select count(*) from kg_entities where name <> 'a name nobody has'"


def test_a_reading_unit_of_work_refuses_writes(settings: Settings) -> None:
    engine = create_app_engine(settings)
    try:
        uow = UnitOfWorkFactory(engine)
        who = factories.user(uow, f"reader-{uuid.uuid4().hex[:8]}")
        with pytest.raises(DatabaseError), uow.reads(who) as w:
            w.session.execute(
                text("insert into kg_entities (user_id, name, type) values (:u, 'x', 'thing')"),
                {"u": who.user_id},
            )
        with uow(who) as w:
            assert w.session.scalar(text(READ)) == 0  # nothing was written
    finally:
        engine.dispose()


def test_its_statements_stay_prepared_across_requests(settings: Settings) -> None:
    """psycopg prepares a statement on its fifth run on a connection and drops all of them at
    every ROLLBACK: reads that end with one (an ordinary unit of work) are parsed and planned
    every time; reads that end with COMMIT are not."""
    engine = create_app_engine(settings)  # its own pool: one connection, used in turn
    try:
        uow = UnitOfWorkFactory(engine)
        who = factories.user(uow, f"reader-{uuid.uuid4().hex[:8]}")

        def prepared_now() -> int:  # read in an ordinary unit of work (it ends with ROLLBACK)
            with uow(who) as w:
                return int(w.session.scalar(text("select count(*) from pg_prepared_statements")))

        for _ in range(6):  # six requests, each in its own unit of work
            with uow(who) as w:
                w.session.execute(text(READ)).all()
        assert prepared_now() == 0
        for _ in range(6):
            with uow.reads(who) as w:
                w.session.execute(text(READ)).all()
        assert prepared_now() >= 1
        assert prepared_now() == 0  # the previous check's ROLLBACK dropped them
    finally:
        engine.dispose()
