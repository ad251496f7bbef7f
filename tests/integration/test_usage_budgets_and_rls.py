"""Budgets (override, admin default, configured default; 80 % warning; exceeded), row-level
security of usage with committed data, the usage_report tool payload, the demo seed and CLI."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, create_engine, text

from jarvis.bootstrap import Services, usage_maintenance
from jarvis.cli import main
from jarvis.demo.runs import DEMO_PASSWORD
from jarvis.errors import PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher
from jarvis.services.usage import UsageQuery
from tests import factories


def spend(services: Services, who: Principal, usd: str) -> None:
    """A gpt-4o run costing ``usd`` (2.50 per 1M input tokens) on the 14th."""
    tokens = int(Decimal(usd) / Decimal("2.5") * 1_000_000)
    factories.finished_run(
        services,
        who,
        "openai",
        "gpt-4o",
        datetime(2026, 1, 14, 12, tzinfo=UTC),
        input_tokens=tokens,
    )


def test_budget_uses_override_then_admin_default_then_settings(services: Services) -> None:
    admin = factories.user(services.uow, "admin", role="admin")
    user = factories.user(services.uow, "u")
    spend(services, user, "8.50")
    # Last month's spend does not count.
    factories.finished_run(
        services, user, "openai", "gpt-4o", datetime(2025, 12, 30, tzinfo=UTC), input_tokens=10**7
    )

    b = services.usage.budget_status(user)
    assert (b.budget_usd, b.spent_usd, b.source) == (Decimal("20.0"), Decimal("8.5"), "default")
    assert not b.warning and not b.exceeded and b.fraction == pytest.approx(0.425)

    services.usage.set_default_budget(admin, "10")
    b = services.usage.budget_status(user)
    assert (b.budget_usd, b.source, b.warning, b.exceeded) == (
        Decimal("10.00"),
        "admin default",
        True,
        False,
    )

    services.usage.set_user_budget(admin, user.user_id, Decimal("8.50"))
    b = services.usage.budget_status(user)
    assert (b.budget_usd, b.source, b.warning, b.exceeded) == (Decimal("8.50"), "user", True, True)

    services.usage.set_user_budget(admin, user.user_id, Decimal("100"))
    b = services.usage.budget_status(user)
    assert not b.warning and not b.exceeded

    services.usage.set_user_budget(admin, user.user_id, 0)
    assert services.usage.budget_status(user).exceeded  # 0 blocks every run

    services.usage.set_user_budget(admin, user.user_id, None)
    assert services.usage.budget_status(user).source == "admin default"
    assert {b.email: b.override_usd for b in services.usage.list_budgets(admin)}[user.email] is None
    # The admin can read anyone's status; a user only their own.
    assert services.usage.budget_status(admin, user.user_id).spent_usd == Decimal("8.5")
    with pytest.raises(PermissionDeniedError):
        services.usage.budget_status(user, admin.user_id)


def test_only_admins_set_budgets_and_amounts_are_checked(services: Services) -> None:
    admin = factories.user(services.uow, "admin", role="admin")
    user = factories.user(services.uow, "u")
    with pytest.raises(PermissionDeniedError):
        services.usage.set_default_budget(user, "5")
    with pytest.raises(PermissionDeniedError):
        services.usage.set_user_budget(user, user.user_id, "500")
    with pytest.raises(ValidationError):
        services.usage.set_default_budget(admin, "-1")
    with pytest.raises(ValidationError):
        services.usage.set_user_budget(admin, user.user_id, "lots")


def test_usage_report_payload_for_the_agent_tool(services: Services) -> None:
    user = factories.user(services.uow, "u", timezone="Asia/Tokyo")
    spend(services, user, "1.25")
    factories.finished_run(
        services,
        user,
        "openai_compatible",
        "mystery",
        datetime(2026, 1, 13, tzinfo=UTC),
        input_tokens=10,
        tools=(("calculator", "ok", 3),),
    )
    report = services.usage.usage_report(user, days=7)
    json.dumps(report)  # serialisable as a tool result
    assert report["period"] == {
        "start": "2026-01-09",
        "end": "2026-01-15",
        "timezone": "Asia/Tokyo",
    }
    assert (report["runs"], report["unpriced_runs"], report["cost_usd"]) == (2, 1, "1.250000")
    assert report["by_model"][0]["model"] == "gpt-4o"
    assert report["top_tools"] == [{"tool": "calculator", "calls": 1, "errors": 0}]
    assert report["budget"]["spent_usd"] == "1.250000" and report["budget"]["exceeded"] is False


def test_rls_committed_user_never_sees_another_users_usage_admin_sees_all(
    committed_services: Services,
    owner_engine: Engine,
) -> None:
    services = committed_services
    a = factories.user(services.uow, "rls-a")
    b = factories.user(services.uow, "rls-b")
    admin = factories.user(services.uow, "rls-admin", role="admin")
    now = services.clock.now()
    factories.finished_run(
        services,
        a,
        "openai",
        "gpt-4o-mini",
        now - timedelta(hours=1),
        input_tokens=1_000_000,
        tools=(("memory_search", "ok", 5),),
    )
    today = now.date()
    q = UsageQuery(today - timedelta(days=2), today + timedelta(days=1))

    # b sees nothing of a's, through the service and directly through the repository (RLS).
    assert services.usage.dashboard(b, q).is_empty
    with services.uow(b) as w:
        repo = w.usage
        assert repo.daily(q.start, q.end, user_id=None) == []
        assert repo.tools(q.start, q.end, user_id=None) == []
        assert repo.ranking(q.start, q.end) == []
        assert (
            w.session.scalar(
                text("select count(*) from usage_daily where user_id = :a"), {"a": a.user_id}
            )
            == 0
        )
    # a cannot write rollup rows for b (WITH CHECK).
    with services.uow(a) as w, pytest.raises(Exception, match="row-level security"):
        w.session.execute(
            text(
                "insert into usage_daily (user_id, day, provider, model, runs) values (:b, current_date, 'x', 'y', 1)"
            ),
            {"b": b.user_id},
        )
        w.session.flush()

    mine = services.usage.dashboard(a, q)
    assert mine.summary.runs == 1 and mine.summary.cost == Decimal("0.15")
    everyone = services.usage.dashboard(admin, UsageQuery(q.start, q.end, everyone=True))
    assert a.email in {r.email for r in everyone.ranking}
    only_a = services.usage.dashboard(admin, UsageQuery(q.start, q.end, user_id=a.user_id))
    assert only_a.summary.cost == Decimal("0.15") and only_a.tools[0].tool_id == "memory_search"
    # The rollup matches the runs it summarises.
    with owner_engine.connect() as conn:
        total = conn.scalar(
            text("select sum(total_cost) from agent_runs where user_id = :a"), {"a": a.user_id}
        )
        rolled = conn.scalar(
            text("select sum(cost) from usage_daily where user_id = :a"), {"a": a.user_id}
        )
    assert total == rolled == Decimal("0.15")


def test_demo_seed_writes_consistent_runs_rollups_and_a_working_login(fresh_database) -> None:  # type: ignore[no-untyped-def]
    s = fresh_database()
    engine = create_engine(s.owner_url())
    try:
        now = datetime(2026, 1, 15, 12, tzinfo=UTC)
        with usage_maintenance(s) as maintenance:
            result = maintenance.seed_demo(users=4, days=10, runs=600, now=now, knowledge=False)
        assert (result.users, result.runs) == (4, 600)
        assert result.tool_calls > 0 and result.messages >= 600 and result.admin_created
        with engine.connect() as conn:
            counts = conn.execute(
                text(
                    "select (select count(*) from agent_runs where status <> 'running'),"
                    " (select sum(runs) from usage_daily),"
                    " (select sum(total_cost) from agent_runs), (select sum(cost) from usage_daily),"
                    " (select count(*) from tool_calls), (select sum(calls) from tool_usage_daily),"
                    " (select count(*) from agent_runs where unpriced and total_cost is null),"
                    " (select sum(unpriced_runs) from usage_daily),"
                    " (select count(*) from agent_runs where started_at > :now"
                    "   or started_at < :now - interval '11 days'),"
                    " (select count(*) from agent_runs r left join conversations c on c.id = r.conversation_id"
                    "   where c.id is null)"
                ),
                {"now": now},
            ).one()
            assert counts[0] == counts[1] == 600
            assert counts[2] == counts[3]
            assert counts[4] == counts[5]
            assert counts[6] == counts[7]
            assert counts[8] == 0 and counts[9] == 0
            user = conn.execute(
                text("select password_hash, role from users where email = 'demo-1@example.com'")
            ).one()
        assert PasswordHasher().verify(user.password_hash, DEMO_PASSWORD) and user.role == "admin"
        with pytest.raises(Exception, match="exist already"), usage_maintenance(s) as maintenance:
            maintenance.seed_demo(users=1, days=1, runs=1, now=now, knowledge=False)
    finally:
        engine.dispose()


def test_cli_reprice_refuses_a_future_date(capsys) -> None:  # type: ignore[no-untyped-def]
    future = (date.today() + timedelta(days=3)).isoformat()
    assert main(["usage", "reprice", "--since", future]) == 1
    assert "future" in capsys.readouterr().err


def test_cli_reprice_and_demo_seed_on_a_database(fresh_database, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from jarvis.config import get_settings

    s = fresh_database()
    monkeypatch.setenv("DATABASE_URL", s.owner_url())
    monkeypatch.setenv("JARVIS_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("JARVIS_DB_APP_PASSWORD", "test-app-role-password")
    get_settings.cache_clear()
    try:
        assert (
            main(
                [
                    "demo",
                    "seed",
                    "--users",
                    "2",
                    "--days",
                    "3",
                    "--runs",
                    "40",
                    "--prefix",
                    f"cli{uuid.uuid4().hex[:4]}",
                    "--no-knowledge",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "40 runs" in out and "Demo login (an admin):" in out and DEMO_PASSWORD in out
        assert (
            main(
                [
                    "usage",
                    "reprice",
                    "--since",
                    (date.today() - timedelta(days=5)).isoformat(),
                    "--inline",
                ]
            )
            == 0
        )
        assert "Repriced 40 runs" in capsys.readouterr().out
        assert main(["usage", "seed-prices"]) == 0
        assert "Added 0 price versions" in capsys.readouterr().out
        assert main(["usage", "rebuild-rollups"]) == 0
    finally:
        get_settings.cache_clear()


def test_demo_seed_calls_the_knowledge_seed_when_present(fresh_database) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("jarvis.demo.knowledge")
    s = fresh_database()
    engine = create_engine(s.owner_url())
    try:
        with usage_maintenance(s) as maintenance:
            result = maintenance.seed_demo(users=2, days=3, runs=30, prefix="kg", password_hash="x")
        assert result.knowledge is not None
        with engine.connect() as conn:
            assert (
                conn.scalar(
                    text("select count(*) from kg_entities where user_id = any(:ids)"),
                    {"ids": result.user_ids},
                )
                > 0
            )
    finally:
        engine.dispose()
