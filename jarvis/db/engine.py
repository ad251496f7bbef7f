"""SQLAlchemy engines: the app role's (used by everything at run time) and the owner's."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import ConnectionPoolEntry

from jarvis.config import Settings

#: A pooled connection that sat unused longer than this is pinged before it is handed out (a
#: restarted server has dropped it). One in steady use is not: a ping on every checkout was a
#: round trip each, three per chat turn.
PING_IDLE_SECONDS = 1.0
_RETURNED_AT = "jarvis_returned_at"


def create_app_engine(settings: Settings) -> Engine:
    """Engine connecting as the unprivileged app role (subject to row-level security)."""
    engine = create_engine(
        settings.app_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_recycle=1800,
    )
    ping_idle_connections(engine)
    return engine


def ping_idle_connections(engine: Engine, idle_seconds: float = PING_IDLE_SECONDS) -> None:
    """``pool_pre_ping`` for connections idle over ``idle_seconds`` only. A failed ping
    invalidates the pool (every connection older than now reconnects) and the checkout gets a
    new connection, as with ``pool_pre_ping``; a connection broken while in steady use fails
    its statement, which the unit of work reports as :class:`DatabaseUnavailableError` and
    which invalidates the pool the same way."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < idle_seconds:
            return  # a new connection, or one returned a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError("idle connection failed its ping") from exc


def create_owner_engine(settings: Settings) -> Engine:
    """Engine connecting as the schema owner (migrations, CLI maintenance, demo data)."""
    return create_engine(settings.owner_url(), pool_size=2, pool_pre_ping=True)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as libpq / psycopg take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
