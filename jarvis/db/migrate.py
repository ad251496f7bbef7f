"""Run Alembic migrations programmatically (``jarvis db upgrade``, tests, ``jarvis up``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from jarvis.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic config bound to ``settings`` (owner URL, app role name and password)."""
    cfg = (
        Config(str(PROJECT_ROOT / "alembic.ini"))
        if (PROJECT_ROOT / "alembic.ini").exists()
        else Config()
    )
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["settings"] = settings
    return cfg


def head_revision() -> str | None:
    """The newest migration this code ships (what a ready database must be at)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def upgrade(settings: Settings, revision: str = "heads") -> None:
    """Migrate the owner's database up to ``revision`` (all heads by default)."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)
