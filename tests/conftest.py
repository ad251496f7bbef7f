"""Shared fixtures: one embedded PostgreSQL per test session, migrated once.

* ``settings``        settings pointing at the session's server (owner = superuser ``postgres``)
* ``app_engine``      the unprivileged app role's engine (row-level security applies)
* ``uow_factory``     units of work joined to a per-test transaction that is rolled back
* ``services``        ``build_services`` wired to that rolled-back transaction and a fixed clock
* ``committed_services`` services on the real engine (for RLS / concurrency / commit tests:
                      use unique emails, the data stays for the session)
* ``committed_user``  committed users (through ``uow.users``), deleted after the test
* ``fresh_database``  a factory for a new empty migrated database (UI / e2e / CLI tests): a
                      copy of a template database migrated once per session (~0.1 s each)

Test data comes from ``tests/factories.py``. Tests marked ``slow`` (over ~5 s) run in
``make test``; ``pytest -m "not slow"`` skips them for a quick loop.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from jarvis.bootstrap import Services, build_services  # noqa: E402
from jarvis.clock import FixedClock  # noqa: E402
from jarvis.config import Settings, load_settings  # noqa: E402
from jarvis.db.embedded import EmbeddedPostgres  # noqa: E402
from jarvis.db.engine import create_app_engine, create_owner_engine  # noqa: E402
from jarvis.db.migrate import upgrade  # noqa: E402
from jarvis.db.uow import UnitOfWorkFactory  # noqa: E402
from jarvis.identity import Principal  # noqa: E402
from jarvis.security.passwords import PasswordHasher  # noqa: E402
from tests import factories  # noqa: E402

TEST_MASTER_KEY = "11" * 32
#: Tests point OpenAI-compatible keys at local wire servers (127.0.0.1): the SSRF guard lets
#: loopback through only because tests allow-list it, as an admin of a local Ollama would.
TEST_OUTBOUND_ALLOWLIST = "127.0.0.0/8,::1,localhost"
TEST_JWT_SECRET = "test-jwt-secret-" + "x" * 40
TEST_APP_PASSWORD = "test-app-role-password"  # noqa: S105


def app_environment(s: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a Jarvis process (a command, ``jarvis up``, a worker) at
    the test database ``s``, plus ``extra``."""
    return {
        "DATABASE_URL": s.owner_url(),
        "JARVIS_DATA_DIR": str(s.data_dir),
        "JARVIS_MASTER_KEY": TEST_MASTER_KEY,
        "JARVIS_JWT_SECRET": TEST_JWT_SECRET,
        "JARVIS_DB_APP_PASSWORD": TEST_APP_PASSWORD,
        "JARVIS_ENV": "test",
        **extra,
    }


_db_counter = itertools.count(1)


def plain_url(url: str) -> str:
    """A SQLAlchemy URL as libpq understands it (no +psycopg)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests count as slow tests too: ``pytest -m "not slow"`` leaves them out."""
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = Path(tmp_path_factory.mktemp("pg"))
    server = EmbeddedPostgres(root, delete_on_stop=True)
    url = server.start()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        # A throw-away server: no crash safety needed, so no waiting for the disk on commits.
        # (synchronous_commit stays on: with asynchronous commits VACUUM cannot mark pages
        # all-visible at once, and the plan tests expect index-only scans.)
        for setting in ("fsync", "full_page_writes"):
            conn.execute(sql.SQL("alter system set {} = off").format(sql.Identifier(setting)))
        conn.execute("select pg_reload_conf()")
    yield url
    server.stop()


def make_settings(database_url: str, data_dir: Path, **extra: object) -> Settings:
    return load_settings(
        env="test",
        database_url=database_url,
        data_dir=data_dir,
        master_key=TEST_MASTER_KEY,
        jwt_secret=TEST_JWT_SECRET,
        db_app_password=TEST_APP_PASSWORD,
        **{"outbound_allowlist": TEST_OUTBOUND_ALLOWLIST, **extra},
    )


@pytest.fixture(scope="session")
def settings(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = make_settings(pg_server, Path(tmp_path_factory.mktemp("data")))
    upgrade(s)
    owner = create_owner_engine(s)
    try:
        factories.ensure_operator(owner)  # the real admin tests act as (tests/factories.py)
    finally:
        owner.dispose()
    return s


@pytest.fixture(scope="session")
def app_engine(settings: Settings) -> Iterator[Engine]:
    engine = create_app_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def owner_engine(settings: Settings) -> Iterator[Engine]:
    engine = create_owner_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def fast_hasher() -> PasswordHasher:
    """argon2id with small costs: tests that do not measure hashing stay fast."""
    return PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1)


@pytest.fixture
def db_connection(app_engine: Engine) -> Iterator[Connection]:
    conn = app_engine.connect()
    trans = conn.begin()
    yield conn
    trans.rollback()
    conn.close()


@pytest.fixture
def uow_factory(db_connection: Connection) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(
        session_factory=lambda: Session(
            bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def services(
    settings: Settings,
    app_engine: Engine,
    uow_factory: UnitOfWorkFactory,
    clock: FixedClock,
    fast_hasher: PasswordHasher,
) -> Services:
    return build_services(
        settings, engine=app_engine, uow=uow_factory, clock=clock, hasher=fast_hasher
    )


@pytest.fixture
def committed_services(
    settings: Settings, app_engine: Engine, fast_hasher: PasswordHasher
) -> Iterator[Services]:
    services = build_services(settings, engine=app_engine, hasher=fast_hasher)
    yield services
    services.shutdown()  # its run workers and listener (the engine is the session's)


@pytest.fixture
def unique_email() -> Callable[[str], str]:
    return factories.unique_email


@pytest.fixture
def committed_user(owner_engine: Engine) -> Iterator[Callable[[str], Principal]]:
    """Make committed users (``make("tag")``); they and their rows are deleted after the test.

    Written by the owner through ``uow.users`` (no sign-up rules involved)."""
    owner = UnitOfWorkFactory(owner_engine)
    made: list[uuid.UUID] = []

    def make(tag: str) -> Principal:
        principal = factories.user(owner, tag)
        made.append(principal.user_id)
        return principal

    yield make
    with owner() as w:
        w.users.delete(made)
        w.commit()


def _database_url(pg_server: str, name: str) -> str:
    return make_url(pg_server).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def template_database(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a database migrated once per session, the template of ``fresh_database``.

    Nobody connects to it after its migration (``allow_connections false``): PostgreSQL copies
    a template only while it has no connections."""
    name = f"jarvis_template_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(plain_url(pg_server), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    upgrade(make_settings(_database_url(pg_server, name), Path(tmp_path_factory.mktemp("data"))))
    with psycopg.connect(plain_url(pg_server), autocommit=True) as conn:
        conn.execute(
            sql.SQL("alter database {} with is_template true allow_connections false").format(
                sql.Identifier(name)
            )
        )
    return name


@pytest.fixture(scope="session")
def fresh_database(
    pg_server: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], Settings]:
    """A new, empty, migrated database in the session's server (a copy of the template
    database, ~0.1 s instead of running every migration); returns its settings."""

    def make() -> Settings:
        name = f"jarvis_t{next(_db_counter)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(plain_url(pg_server), autocommit=True) as conn:
            conn.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(template_database)
                )
            )
        return make_settings(_database_url(pg_server, name), Path(tmp_path_factory.mktemp("data")))

    return make
