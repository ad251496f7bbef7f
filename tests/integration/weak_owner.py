"""A database owned and migrated by a role that is neither superuser nor BYPASSRLS (an external
PostgreSQL): forced row-level security applies to the owner too, so its definer functions
need their own policies. Import the fixture into a test module to use it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from jarvis.config import Settings
from tests.conftest import make_settings, plain_url


@pytest.fixture
def weak_owner_database(
    pg_server: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Settings]]:
    """A database owned and migrated by a role that is neither superuser nor BYPASSRLS (the
    extensions are created for it first; ``settings`` created the app role); yields (a
    superuser engine on it, its settings)."""
    from jarvis.db.migrate import upgrade

    suffix = uuid.uuid4().hex[:8]
    role, name = f"jarvis_weak_{suffix}", f"jarvis_weak_{suffix}"
    with psycopg.connect(plain_url(pg_server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login password 'weak-pw' nosuperuser nobypassrls").format(
                sql.Identifier(role)
            )
        )
        conn.execute(
            sql.SQL("create database {} owner {}").format(
                sql.Identifier(name), sql.Identifier(role)
            )
        )
    admin_url = make_url(pg_server).set(database=name)
    with psycopg.connect(plain_url(admin_url.render_as_string(hide_password=False))) as conn:
        conn.execute("create extension vector")
        conn.execute("create extension pg_trgm")
        conn.commit()
    owner_url = admin_url.set(username=role, password="weak-pw")
    weak = make_settings(
        owner_url.render_as_string(hide_password=False), Path(tmp_path_factory.mktemp("weak"))
    )
    assert weak.db_app_role == settings.db_app_role
    upgrade(weak)
    superuser = create_engine(admin_url)
    try:
        yield superuser, weak
    finally:
        superuser.dispose()
        with psycopg.connect(plain_url(pg_server), autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))
