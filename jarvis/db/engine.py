"""SQLAlchemy engines: the app role's (used by everything at run time) and the owner's."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from jarvis.config import Settings


def create_app_engine(settings: Settings) -> Engine:
    """Engine connecting as the unprivileged app role (subject to row-level security)."""
    return create_engine(
        settings.app_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def create_owner_engine(settings: Settings) -> Engine:
    """Engine connecting as the schema owner (migrations, CLI maintenance, demo data)."""
    return create_engine(settings.owner_url(), pool_size=2, pool_pre_ping=True)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as libpq / psycopg take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
