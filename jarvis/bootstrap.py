"""The one composition root: ``build_services(settings=None, **overrides) -> Services``.

Production defaults everywhere; tests pass overrides (a session factory joined to a
rolled-back transaction, a fixed clock, a fake LLM provider). Pages reach services only
through the cached result (``jarvis.ui.services.get_services``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from jarvis.clock import Clock, SystemClock
from jarvis.config import Settings, get_settings
from jarvis.db.engine import create_app_engine
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.security.passwords import PasswordHasher
from jarvis.services.auth import AuthService
from jarvis.services.health import HealthService


@dataclass
class Services:
    """Everything a page, the CLI or a test needs, wired once."""

    settings: Settings
    engine: Engine
    uow: UnitOfWorkFactory
    clock: Clock
    health: HealthService
    auth: AuthService
    extras: dict[str, Any] = field(default_factory=dict)


def ensure_database_url(settings: Settings) -> Settings:
    """With DATABASE_URL unset, start (or attach to) the embedded server in the data folder."""
    if settings.database_url:
        return settings
    from jarvis.db.embedded import EmbeddedPostgres

    url = EmbeddedPostgres(settings.data_dir).start()
    return settings.model_copy(update={"database_url": url, "embedded_database": True})


def build_services(settings: Settings | None = None, **overrides: Any) -> Services:
    """Wire engine, repositories, providers and services; ``overrides`` replace any part."""
    settings = ensure_database_url(settings or get_settings())
    engine: Engine = overrides.get("engine") or create_app_engine(settings)
    uow: UnitOfWorkFactory = overrides.get("uow") or UnitOfWorkFactory(engine)
    clock: Clock = overrides.get("clock") or SystemClock()
    hasher: PasswordHasher = overrides.get("hasher") or PasswordHasher()

    health = overrides.get("health") or HealthService(engine, embedded=settings.uses_embedded_database)
    auth = overrides.get("auth") or AuthService(uow, hasher, clock)

    return Services(
        settings=settings,
        engine=engine,
        uow=uow,
        clock=clock,
        health=health,
        auth=auth,
    )
