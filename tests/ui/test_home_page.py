"""Home is a start page: recent conversations (links to each), this month's spend against the
budget, quick links; the database details are for administrators only."""

from __future__ import annotations

from decimal import Decimal

from jarvis.ui.navigation import pages_for
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import open_page, sign_in_as


def test_home_lists_recent_conversations_and_the_months_spend(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    services = get_services()
    admin = factories.admin_account(services, "home-admin@example.com", name="Ada")
    uma = factories.account(services, "home@example.com", name="Uma", actor=admin)
    services.usage.set_user_budget(admin, uma.user_id, "20")
    older = services.conversations.create_default(uma, title="Trip to Lisbon")
    newer = services.conversations.create_default(uma, title="Boiler service")
    factories.finished_run(
        services, uma, "openai", "gpt-4o", services.clock.now(), input_tokens=2_000_000
    )

    at = open_page(new_app, "app_pages/home.py", uma)
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Welcome, Uma"]
    links = [(link.label, link.proto.query_string) for link in at.get("page_link")]
    titles = [label for label, _q in links]
    assert titles.index("Boiler service") < titles.index("Trip to Lisbon")
    assert ("Boiler service", f"c={newer.id}") in links
    assert ("Trip to Lisbon", f"c={older.id}") in links
    assert {"Usage", "Memory", "Knowledge graph"} <= set(titles)
    assert at.button(key="home_new_chat").label == "New chat"
    spent = services.usage.budget_status(uma).spent_usd
    assert spent > 0
    [bar] = at.get("progress")
    assert f"${spent:,.2f} of $20.00 this month" in bar.proto.text
    assert not any(m.label == "PostgreSQL" for m in at.metric)


def test_an_empty_start_and_a_zero_budget_are_said_plainly(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    services = get_services()
    admin = factories.admin_account(services, "zero-admin@example.com", name="Ada")
    uma = factories.account(services, "zero@example.com", name="Uma", actor=admin)
    services.usage.set_user_budget(admin, uma.user_id, Decimal("0"))
    at = open_page(new_app, "app_pages/home.py", uma)
    assert not at.exception, at.exception
    assert any("No conversations yet" in i.value for i in at.info)
    assert any("monthly budget is spent" in e.value for e in at.error)


def test_the_system_page_is_for_admins_only(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    assert "app_pages/admin_system.py" not in [p.path for p in pages_for("user")]
    services = get_services()
    admin = factories.admin_account(services, "sys-admin@example.com", name="Ada")
    at = sign_in_as(new_app(), admin).run()
    at.switch_page("app_pages/admin_system.py")
    at = at.run()
    assert not at.exception, at.exception
    assert any(m.label == "pgvector" for m in at.metric)
