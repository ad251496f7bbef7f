"""Alembic environment: the URL and the app role come from Jarvis's settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from jarvis.config import load_settings
from jarvis.db.tables import Base

#: pg_advisory_xact_lock key held while migrating (any constant unique to Jarvis).
MIGRATION_LOCK = 0x4A415256  # "JARV"

config = context.config
target_metadata = Base.metadata

settings = config.attributes.get("settings")
if settings is None:
    settings = load_settings()
    config.attributes["settings"] = settings


def run_migrations_offline() -> None:
    context.configure(url=settings.owner_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(settings.owner_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            # Several app processes may start at once (replicas): one migrates, the others
            # wait here and then find the database at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
