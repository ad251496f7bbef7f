"""The usage page (user and admin views) and the admin prices & budgets page, via app.py."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from streamlit.testing.v1 import AppTest

from jarvis.identity import Principal
from jarvis.llm.base import Usage
from jarvis.ui.navigation import pages_for
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import open_page, sign_in_as


def people() -> tuple[Principal, Principal]:
    services = get_services()
    admin = factories.admin_account(services, "boss@example.com", name="Boss")
    user = factories.account(services, "worker@example.com", name="Worker", actor=admin)
    return admin, user


def add_runs(who: Principal) -> None:
    services = get_services()
    now = services.clock.now() - timedelta(minutes=30)
    factories.finished_run(
        services,
        who,
        "openai",
        "gpt-4o",
        now,
        input_tokens=1_000_000,
        output_tokens=100_000,
        tools=(("memory_search", "ok", 30), ("web_search", "error", 800)),
    )  # 3.50 USD
    factories.finished_run(
        services, who, "openai", "gpt-4o-mini", now + timedelta(minutes=1), input_tokens=1_000_000
    )  # 0.15
    factories.finished_run(
        services,
        who,
        "openai_compatible",
        "llama3.1:8b",
        now + timedelta(minutes=2),
        input_tokens=10,
    )


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_user_sees_cards_charts_runs_and_csv_export(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    _, user = people()
    add_runs(user)
    at = open_page(new_app, "app_pages/usage.py", user)
    assert any(t.value == "Usage and cost" for t in at.title)
    assert metric(at, "Runs") == "3"
    assert metric(at, "Cost, the last 30 days") == "$3.65"
    assert metric(at, "Unpriced runs") == "1"
    assert len(at.get("plotly_chart")) == 3  # daily cost by model, tokens by type, top tools
    runs = next(
        df.value
        for df in at.dataframe
        if "model" in df.value.columns and "status" in df.value.columns
    )
    assert list(runs["model"]) == ["llama3.1:8b", "gpt-4o-mini", "gpt-4o"]
    assert list(runs["cost"]) == ["unpriced", "$0.15", "$3.50"]
    assert "user" not in runs.columns
    assert len(at.get("download_button")) == 2
    assert [s.key for s in at.selectbox] == ["usage_timezone"]  # no user filter for a user
    assert any(
        "Monthly budget: $3.65 of $20.00" in (p.proto.text or "") for p in at.get("progress")
    )

    at.multiselect(key="usage_models").select("gpt-4o").run()
    assert not at.exception, at.exception
    assert metric(at, "Runs") == "1" and metric(at, "Cost, the last 30 days") == "$3.50"


def test_user_picks_a_time_zone_and_run_times_follow(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    _, user = people()
    add_runs(user)
    at = open_page(new_app, "app_pages/usage.py", user)
    assert any("time zone UTC" in c.value for c in at.caption)
    utc_started = next(df.value for df in at.dataframe if "status" in df.value.columns)["started"]
    at.selectbox(key="usage_timezone").set_value("Asia/Kolkata").run()  # UTC+05:30
    assert not at.exception, at.exception
    assert any("time zone Asia/Kolkata" in c.value for c in at.caption)
    assert at.selectbox(key="usage_timezone").value == "Asia/Kolkata"
    local_started = next(df.value for df in at.dataframe if "status" in df.value.columns)["started"]
    assert list(local_started) != list(utc_started)
    assert list(local_started)[0].endswith(
        f"{(int(list(utc_started)[0][-2:]) + 30) % 60:02d}"
    )  # the half-hour offset shows in the minutes


def test_the_default_range_ends_on_the_users_local_today(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    _, user = people()
    now = datetime.now(UTC)
    # One of the two zones is always on another calendar day than UTC.
    tz = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"
    with get_services().uow(user) as w:
        assert w.usage.set_timezone(user.user_id, tz)
        w.commit()
    local_today = now.astimezone(ZoneInfo(tz)).date()
    assert local_today != now.date()
    at = open_page(new_app, "app_pages/usage.py", user)
    assert at.date_input(key="usage_range").value[1] == local_today


def test_empty_state_says_what_to_do(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    _, user = people()
    at = open_page(new_app, "app_pages/usage.py", user)
    assert metric(at, "Runs") == "0"
    assert any("No runs in this range yet" in i.value and "Chat page" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_admin_filters_by_user_and_sees_the_ranking(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    admin, user = people()
    add_runs(user)
    at = open_page(new_app, "app_pages/usage.py", admin)
    assert metric(at, "Runs") == "0"  # the admin's own usage by default
    at.selectbox(key="usage_user").set_value("__everyone__").run()
    assert not at.exception, at.exception
    assert metric(at, "Runs") == "3"
    ranking = next(
        df.value
        for df in at.dataframe
        if "cost" in df.value.columns and "email" in df.value.columns
    )
    assert list(ranking["email"]) == ["worker@example.com"]
    runs = next(df.value for df in at.dataframe if "status" in df.value.columns)
    assert set(runs["user"]) == {"worker@example.com"}
    assert list(runs["trace"]) == [None, None, None]  # another user's runs: no trace link
    at.selectbox(key="usage_user").set_value(str(user.user_id)).run()
    assert not at.exception, at.exception
    assert metric(at, "Cost, the last 30 days") == "$3.65"
    assert not any(
        "email" in df.value.columns and "unpriced runs" in df.value.columns for df in at.dataframe
    )


def test_admin_prices_page_adds_a_version_and_sets_budgets(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    admin, user = people()
    at = open_page(new_app, "app_pages/admin_prices.py", admin)
    table = next(df.value for df in at.dataframe if "version" in df.value.columns)
    assert {"gpt-4o-mini*", "*"} <= set(table["model"])
    at.selectbox(key="prices_provider").set_value("openai_compatible")
    at.text_input(key="prices_model").input("llama3.1:*")
    at.number_input(key="prices_input").set_value(0.2)
    at.number_input(key="prices_output").set_value(0.4)
    at.button(key="FormSubmitter:prices_add-Add version").click().run()
    assert not at.exception, at.exception
    assert any("jarvis usage reprice --since" in s.value for s in at.success)
    assert get_services().pricing.cost_for(
        "openai_compatible",
        "llama3.1:8b",
        Usage(input_tokens=1_000_000),
        at=get_services().clock.now(),
    ).cost == Decimal("0.2")

    at.number_input(key="budgets_default_usd").set_value(42.0)
    at.button(key="FormSubmitter:budgets_default-Save default").click().run()
    assert not at.exception, at.exception
    assert get_services().usage.budget_status(user).budget_usd == Decimal("42.00")
    at.selectbox(key="budgets_user_id").set_value(str(user.user_id))
    at = at.run()
    save = f"FormSubmitter:budgets_user_{user.user_id}-Save override"
    # Saving the form as it comes (empty: no override) keeps the default; it never blocks.
    assert at.text_input(key=f"budgets_user_usd_{user.user_id}").value == ""
    at.button(key=save).click().run()
    assert not at.exception, at.exception
    status = get_services().usage.budget_status(user)
    assert (status.budget_usd, status.source, status.exceeded) == (
        Decimal("42.00"),
        "admin default",
        False,
    )
    assert any("no override, uses the default ($42.00)" in s.value for s in at.success)
    at.text_input(key=f"budgets_user_usd_{user.user_id}").input("$7.5")
    at.button(key=save).click().run()
    assert not at.exception, at.exception
    status = get_services().usage.budget_status(user)
    assert (status.budget_usd, status.source) == (Decimal("7.50"), "user")
    # Emptying the field removes the override again.
    at = at.run()
    assert at.text_input(key=f"budgets_user_usd_{user.user_id}").value == "7.50"
    at.text_input(key=f"budgets_user_usd_{user.user_id}").input("")
    at.button(key=save).click().run()
    assert get_services().usage.budget_status(user).source == "admin default"


def test_prices_page_is_for_admins_only(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    _, user = people()
    assert "app_pages/admin_prices.py" not in [p.path for p in pages_for("user")]
    assert "app_pages/admin_prices.py" in [p.path for p in pages_for("admin")]
    at = sign_in_as(new_app(), user).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/admin_prices.py")


def test_admin_recomputes_past_costs_after_adding_a_price(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    """A run on a model without a price is unpriced; the admin adds the price from yesterday
    on and clicks "Recompute costs since …": a background job re-prices the run, the page
    shows its summary, and the user's usage page has the cost."""
    admin, user = people()
    services = get_services()
    factories.finished_run(
        services,
        user,
        "openai_compatible",
        "llama3.1:8b",
        services.clock.now() - timedelta(minutes=5),
        input_tokens=1_000_000,
    )
    at = open_page(new_app, "app_pages/usage.py", user)
    assert metric(at, "Unpriced runs") == "1"

    yesterday = services.clock.now().date() - timedelta(days=1)
    at = open_page(new_app, "app_pages/admin_prices.py", admin)
    at.selectbox(key="prices_provider").set_value("openai_compatible")
    at.text_input(key="prices_model").input("llama3.1:*")
    at.number_input(key="prices_input").set_value(0.2)
    at.date_input(key="prices_effective").set_value(yesterday)
    at.button(key="FormSubmitter:prices_add-Add version").click().run()
    assert not at.exception, at.exception
    assert any("use *Recompute costs* below" in s.value for s in at.success)
    # The first day follows the price just added.
    assert at.date_input(key="prices_reprice_since").value == yesterday
    assert at.button(key="prices_reprice_go").label == f"Recompute costs since {yesterday}"
    at.button(key="prices_reprice_go").click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 60
    while not any("Repriced" in s.value for s in at.success):
        assert time.monotonic() < deadline, [s.value for s in at.success]
        time.sleep(0.2)
        at = at.run()
        assert not at.exception, at.exception
    assert f"Repriced 1 run started since {yesterday} (UTC); rollups rebuilt." in [
        s.value for s in at.success
    ]
    [job] = services.jobs.recent(admin, "reprice")  # the admin's job
    assert job.state == "succeeded"

    at = open_page(new_app, "app_pages/usage.py", user)
    assert metric(at, "Unpriced runs") == "0"
    assert metric(at, "Cost, the last 30 days") == "$0.20"
