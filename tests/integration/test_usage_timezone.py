"""A user chooses their time zone: usage days, the month and run times follow it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from jarvis.bootstrap import Services
from jarvis.errors import ValidationError
from jarvis.services.usage import UsageQuery
from tests import factories

JAN = UsageQuery(start=date(2026, 1, 1), end=date(2026, 1, 15))


def test_setting_the_time_zone_moves_days_and_run_times(services: Services) -> None:
    who = factories.user(services.uow, "tz")
    factories.finished_run(
        services,
        who,
        "openai",
        "gpt-4o-mini",
        datetime(2026, 1, 10, 3, 30, tzinfo=UTC),
        input_tokens=1000,
        output_tokens=100,
    )
    before = services.usage.dashboard(who, JAN)
    assert before.timezone == "UTC"
    assert [d.day for d in before.daily] == [date(2026, 1, 10)]

    assert services.usage.set_timezone(who, " America/New_York ") == "America/New_York"

    after = services.usage.dashboard(who, JAN)
    assert after.timezone == "America/New_York"
    assert services.usage.timezone(who) == "America/New_York"
    # 03:30 UTC on the 10th is the evening of the 9th in New York.
    assert [d.day for d in after.daily] == [date(2026, 1, 9)]
    assert after.runs.rows[0].started_at.hour == 22


@pytest.mark.parametrize("name", ["", "Mars/Olympus_Mons", "../etc/passwd", "x" * 200])
def test_an_unknown_time_zone_is_refused_and_nothing_changes(
    services: Services, unique_email, name: str
) -> None:  # type: ignore[no-untyped-def]
    who = factories.user(services.uow, "tzbad", timezone="Europe/Paris")
    with pytest.raises(ValidationError):
        services.usage.set_timezone(who, name)
    assert services.usage.timezone(who) == "Europe/Paris"


def test_cli_reprice_refuses_an_owner_that_cannot_see_every_users_runs(
    settings, owner_engine, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    """An external owner that is neither superuser nor BYPASSRLS sees no runs under FORCE ROW
    LEVEL SECURITY: the CLI must say so instead of printing "Repriced 0 runs"."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from jarvis.cli import main
    from jarvis.config import get_settings

    role = "jarvis_test_weak_owner"
    with owner_engine.begin() as conn:
        conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'weak-owner-pw' NOBYPASSRLS"))
        conn.execute(
            text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        )
    url = make_url(settings.owner_url()).set(username=role, password="weak-owner-pw")
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("JARVIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("JARVIS_DB_APP_PASSWORD", "test-app-role-password")
    get_settings.cache_clear()
    try:
        assert main(["usage", "reprice", "--since", "2026-01-01", "--inline"]) == 1
        assert "BYPASSRLS" in capsys.readouterr().err
        assert main(["usage", "rebuild-rollups"]) == 1
        assert "BYPASSRLS" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()
        with owner_engine.begin() as conn:
            conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
