"""The trace page (opened from a run) and the usage page's headline, presets and latency,
through app.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
from streamlit.testing.v1 import AppTest

from jarvis.identity import Principal
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import sign_in_as


def open_trace(new_app: Callable[[], AppTest], who: Principal, run_id: object) -> AppTest:
    at = sign_in_as(new_app(), who)
    at.switch_page("app_pages/trace.py")
    at.query_params["run"] = str(run_id)
    at = at.run()
    assert not at.exception, at.exception
    return at


def users(*emails: str) -> list[Principal]:
    services = get_services()
    admin = factories.admin_account(services, "boss@example.com")
    return [factories.account(services, e, actor=admin) for e in emails]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def table(at: AppTest, column: str) -> pd.DataFrame:
    return next(df.value for df in at.dataframe if column in df.value.columns)


def a_run(who: Principal) -> object:
    services = get_services()
    return factories.finished_run(
        services,
        who,
        "openai",
        "gpt-4o",
        services.clock.now() - timedelta(hours=2),
        input_tokens=12_000,
        output_tokens=3_400,
        tools=(("calculator", "ok", 12), ("web_search", "error", 800)),
    )


def test_a_trace_shows_the_runs_header_and_its_tool_calls(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    [user] = users("tracer@example.com")
    run_id = a_run(user)
    at = open_trace(new_app, user, run_id)
    assert [t.value for t in at.title] == ["Trace"]
    assert metric(at, "Latency") == "1 min 00 s"  # the factory's run lasts a minute
    assert metric(at, "Tokens") == "15,400"
    assert metric(at, "Cost") == "$0.06"  # 12,000 in at $2.50 + 3,400 out at $10 per 1M
    assert any("12,000 tokens" in c.value and "3,400 tokens" in c.value for c in at.caption)
    shown = " ".join(m.value for m in at.markdown)
    assert "Tool call · calculator" in shown and "Tool call · web\\_search" in shown
    assert any("Duration 800 ms" in c.value for c in at.caption)


def test_another_users_trace_is_not_found(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    owner, other = users("owner@example.com", "nosy@example.com")
    run_id = a_run(owner)
    at = open_trace(new_app, other, run_id)
    assert [e.value for e in at.error] == ["That run does not exist, or it is not yours."]
    assert not at.metric  # nothing of the run


def test_a_trace_without_a_run_says_where_traces_come_from(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    [user] = users("lost@example.com")
    at = open_trace(new_app, user, "not-a-uuid")
    assert any("Trace" in i.value and "Usage" in i.value for i in at.info)


def test_usage_headline_presets_latency_and_trace_links(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    services = get_services()
    [user] = users("spender@example.com")
    now = services.clock.now()
    recent = factories.finished_run(
        services, user, "openai", "gpt-4o", now - timedelta(hours=1), input_tokens=1_000_000
    )  # $2.50
    factories.finished_run(
        services, user, "openai", "gpt-4o", now - timedelta(days=20), input_tokens=400_000
    )  # $1.00, outside the last 7 days
    at = sign_in_as(new_app(), user)
    at.switch_page("app_pages/usage.py")
    at = at.run()
    assert not at.exception, at.exception
    assert at.segmented_control(key="usage_preset").value == "30 d"
    assert metric(at, "Cost, the last 30 days") == "$3.50"

    at.segmented_control(key="usage_preset").set_value("7 d").run()
    assert not at.exception, at.exception
    assert metric(at, "Cost, the last 7 days") == "$2.50"
    start, end = at.date_input(key="usage_range").value
    assert (end - start).days == 6
    sentence = next(
        m.value.replace("\\", "") for m in at.markdown if "This month so far" in m.value
    )
    assert "of your $20.00 budget" in sentence and "At this pace you will spend about $" in sentence
    models = table(at, "p50 latency")
    assert list(models["model"]) == ["gpt-4o"]
    assert list(models["p50 latency"]) == ["1 min 00 s"]  # completed runs last a minute
    assert list(models["cost"]) == ["$2.50"]
    runs = table(at, "trace")
    assert list(runs["trace"]) == [f"trace?run={recent}"]
    assert list(runs["cost"]) == ["$2.50"]
