"""docker-compose.yml, Dockerfile and .env.example say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import AliasChoices

from jarvis.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_pgvector_with_health_check_and_volume_and_the_app() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    db, app = compose["services"]["db"], compose["services"]["app"]
    assert db["image"].startswith("pgvector/pgvector:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pgdata" in compose["volumes"]
    assert app["build"] == "."
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert "8501:8501" in app["ports"]
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in app["environment"]["DATABASE_URL"]
    assert app["environment"]["JARVIS_ENV"] == "production"


def test_dockerfile_migrates_before_starting_streamlit() -> None:
    cmd = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD")
    )
    assert cmd.index("jarvis db upgrade") < cmd.index("streamlit run app.py")


def _aliases() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        if isinstance(field.validation_alias, AliasChoices):
            names.add(str(field.validation_alias.choices[0]))
    return names


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    assert documented == _aliases()
