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
    assert "8501" in app["expose"] and app["deploy"]["replicas"] >= 2
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert "@db:5432/" in app["environment"]["DATABASE_URL"]
    assert app["environment"]["JARVIS_ENV"] == "production"


def test_compose_puts_a_proxy_in_front_of_the_replicas_and_trusts_only_it() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    proxy, app = compose["services"]["proxy"], compose["services"]["app"]
    assert any(v.startswith("./deploy/Caddyfile:") for v in proxy["volumes"])
    assert "8080:80" in proxy["ports"]
    assert "JARVIS_TRUSTED_PROXIES" in app["environment"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy app:8501" in caddyfile and "lb_policy cookie" in caddyfile


def test_dockerfile_serves_ui_and_api_with_jarvis_up() -> None:
    """`jarvis up` migrates (under an advisory lock, so replicas can start together) and then
    runs one uvicorn process for the UI and the API; the health check asks /api/v1/ready."""
    text = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in text.splitlines() if line.startswith("CMD"))
    assert cmd == 'CMD ["jarvis", "up"]'
    assert "JARVIS_HOST=0.0.0.0" in text and "/api/v1/ready" in text


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
