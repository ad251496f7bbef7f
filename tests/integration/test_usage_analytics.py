"""Usage aggregations against a small hand-computed dataset (clock: 2026-01-15 12:00 UTC).

User "ny" lives in America/New_York (UTC-5 in January), so a run at 03:30 UTC on the 10th
belongs to the 9th locally.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from jarvis.bootstrap import Services
from jarvis.errors import ConflictError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.base import Usage
from jarvis.services.pricing import PriceInput
from jarvis.services.usage import UsageQuery, reprice
from tests import factories

JAN = UsageQuery(start=date(2026, 1, 1), end=date(2026, 1, 15))
SONNET = "claude-sonnet-4-20250514"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def ny(services: Services, unique_email) -> Principal:  # type: ignore[no-untyped-def]
    who = factories.user(services.uow, "ny", timezone="America/New_York")
    # r1: gpt-4o-mini 100k in + 10k out = 0.015 + 0.006 = 0.021; local day Jan 9
    factories.finished_run(
        services,
        who,
        "openai",
        "gpt-4o-mini",
        utc(2026, 1, 10, 3, 30),
        input_tokens=100_000,
        output_tokens=10_000,
        tools=(("memory_search", "ok", 40), ("web_search", "error", 900)),
    )
    # r2: 200k in + 20k out + 100k cache read = 0.03 + 0.012 + 0.0075 = 0.0495; local Jan 10
    factories.finished_run(
        services,
        who,
        "openai",
        "gpt-4o-mini",
        utc(2026, 1, 10, 5, 30),
        input_tokens=200_000,
        output_tokens=20_000,
        cache_read_tokens=100_000,
        tools=(("memory_search", "ok", 60), ("calculator", "denied", None)),
    )
    # r3 (failed): sonnet 10k in, 2k out, 50k read, 20k write = .03 + .03 + .015 + .075 = 0.15
    factories.finished_run(
        services,
        who,
        "anthropic",
        SONNET,
        utc(2026, 1, 10, 15, 0),
        input_tokens=10_000,
        output_tokens=2_000,
        cache_read_tokens=50_000,
        cache_write_tokens=20_000,
        status="failed",
    )
    # r4: a model without a price -> unpriced
    factories.finished_run(
        services,
        who,
        "openai_compatible",
        "llama3.1:8b",
        utc(2026, 1, 12, 12, 0),
        input_tokens=1000,
        output_tokens=500,
    )
    # r5: the offline model costs an explicit 0
    factories.finished_run(
        services,
        who,
        "offline",
        "offline-deterministic",
        utc(2026, 1, 12, 13, 0),
        input_tokens=50,
        output_tokens=20,
    )
    # r6: last month (0.15)
    factories.finished_run(
        services, who, "openai", "gpt-4o-mini", utc(2025, 12, 20, 12, 0), input_tokens=1_000_000
    )
    return who


def test_costs_are_recorded_on_each_run_with_the_price_version(
    services: Services, ny: Principal
) -> None:
    page = services.usage.recent_runs(
        ny, UsageQuery(date(2025, 12, 1), date(2026, 1, 15), page_size=10)
    )
    by_model = {}
    for r in page.rows:
        by_model.setdefault(r.model, []).append(r)
    assert sorted(r.cost for r in by_model["gpt-4o-mini"]) == [  # type: ignore[type-var]
        Decimal("0.021"),
        Decimal("0.0495"),
        Decimal("0.15"),
    ]
    assert by_model[SONNET][0].cost == Decimal("0.15") and by_model[SONNET][0].status == "failed"
    llama = by_model["llama3.1:8b"][0]
    assert llama.unpriced and llama.cost is None and llama.price_version is None
    offline = by_model["offline-deterministic"][0]
    assert not offline.unpriced and offline.cost == 0 and offline.price_version is not None


def test_summary_for_a_range(services: Services, ny: Principal) -> None:
    s = services.usage.summary(ny, JAN)
    assert (s.runs, s.failed_runs, s.unpriced_runs) == (5, 1, 1)
    assert s.cost == Decimal("0.2205")
    assert s.input_tokens == 100_000 + 200_000 + 10_000 + 1000 + 50
    assert s.output_tokens == 10_000 + 20_000 + 2_000 + 500 + 20
    assert (s.cache_read_tokens, s.cache_write_tokens) == (150_000, 20_000)
    assert s.total_tokens == s.input_tokens + s.output_tokens + 170_000
    only_mini = services.usage.summary(ny, UsageQuery(JAN.start, JAN.end, models=("gpt-4o-mini",)))
    assert (only_mini.runs, only_mini.cost) == (2, Decimal("0.0705"))


def test_daily_breakdown_uses_the_users_local_days(services: Services, ny: Principal) -> None:
    rows = services.usage.daily(ny, UsageQuery(date(2026, 1, 9), date(2026, 1, 12)))
    got = [(r.day.isoformat(), r.model, r.runs, r.cost) for r in rows]
    assert got == [
        ("2026-01-09", "gpt-4o-mini", 1, Decimal("0.021")),  # 03:30 UTC on the 10th
        ("2026-01-10", SONNET, 1, Decimal("0.15")),
        ("2026-01-10", "gpt-4o-mini", 1, Decimal("0.0495")),
        ("2026-01-12", "offline-deterministic", 1, Decimal("0")),
        ("2026-01-12", "llama3.1:8b", 1, Decimal("0")),
    ]
    assert [r.unpriced_runs for r in rows] == [0, 0, 0, 0, 1]
    assert [
        r.day for r in services.usage.daily(ny, UsageQuery(date(2026, 1, 10), date(2026, 1, 10)))
    ] == [date(2026, 1, 10), date(2026, 1, 10)]


def test_empty_ranges_are_zero_not_errors(services: Services, ny: Principal) -> None:
    empty = UsageQuery(date(2025, 6, 1), date(2025, 6, 30))
    s = services.usage.summary(ny, empty)
    assert (s.runs, s.cost, s.total_tokens) == (0, Decimal(0), 0)
    assert services.usage.daily(ny, empty) == []
    assert services.usage.per_tool(ny, empty) == []
    assert services.usage.recent_runs(ny, empty).rows == []
    dash = services.usage.dashboard(ny, empty)
    assert dash.is_empty and dash.available_models == []


def test_per_tool_calls_errors_and_latency(services: Services, ny: Principal) -> None:
    tools = {t.tool_id: t for t in services.usage.per_tool(ny, JAN)}
    assert set(tools) == {"memory_search", "web_search", "calculator"}
    ms = tools["memory_search"]
    assert (ms.calls, ms.errors, ms.avg_latency_ms, ms.max_latency_ms) == (2, 0, 50.0, 60)
    assert (tools["web_search"].errors, tools["web_search"].error_rate) == (1, 1.0)
    assert (tools["calculator"].denied, tools["calculator"].avg_latency_ms) == (1, None)
    jan10 = services.usage.per_tool(ny, UsageQuery(date(2026, 1, 10), date(2026, 1, 10)))
    assert {t.tool_id: t.calls for t in jan10} == {"memory_search": 1, "calculator": 1}


def test_current_month_and_projection(services: Services, ny: Principal) -> None:
    m = services.usage.current_month(ny)
    # Local now: 2026-01-15 07:00 in New York -> 14 days 7 hours of January elapsed.
    assert (m.month_start, m.today, m.days_in_month) == (date(2026, 1, 1), date(2026, 1, 15), 31)
    assert (m.runs, m.cost, m.unpriced_runs) == (5, Decimal("0.2205"), 1)
    assert m.projected_cost == (Decimal("0.2205") * 31 / Decimal(14 + 7 / 24)).quantize(
        Decimal("0.01")
    )


def test_recent_runs_are_paged_newest_first_in_local_time(
    services: Services, ny: Principal
) -> None:
    first = services.usage.recent_runs(ny, UsageQuery(JAN.start, JAN.end, page_size=2))
    assert [r.model for r in first.rows] == ["offline-deterministic", "llama3.1:8b"]
    assert first.rows[0].started_at.hour == 8  # 13:00 UTC is 08:00 in New York
    assert first.has_more
    last = services.usage.recent_runs(ny, UsageQuery(JAN.start, JAN.end, page=2, page_size=2))
    assert [r.model for r in last.rows] == ["gpt-4o-mini"] and not last.has_more


def test_dashboard_is_one_call_with_everything(services: Services, ny: Principal) -> None:
    dash = services.usage.dashboard(ny, UsageQuery(JAN.start, JAN.end, models=("gpt-4o-mini",)))
    assert dash.timezone == "America/New_York"
    assert dash.summary.runs == 2 and {r.model for r in dash.daily} == {"gpt-4o-mini"}
    assert dash.available_models == sorted(
        ["gpt-4o-mini", SONNET, "llama3.1:8b", "offline-deterministic"]
    )
    assert [r.model for r in dash.runs.rows] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert dash.month.cost == Decimal("0.0705")  # the month follows the model filter
    assert dash.budget is not None and dash.budget.spent_usd == Decimal(
        "0.2205"
    )  # the budget does not
    assert dash.ranking == [] and dash.users == []


def test_bad_ranges_are_refused(services: Services, ny: Principal) -> None:
    with pytest.raises(ValidationError):
        services.usage.summary(ny, UsageQuery(date(2026, 1, 2), date(2026, 1, 1)))
    with pytest.raises(ValidationError):
        services.usage.summary(ny, UsageQuery(date(2024, 1, 1), date(2026, 1, 1)))


def test_users_cannot_ask_for_others_or_everyone(services: Services, ny: Principal) -> None:
    other = factories.user(services.uow, "other")
    with pytest.raises(PermissionDeniedError):
        services.usage.summary(other, UsageQuery(JAN.start, JAN.end, user_id=ny.user_id))
    with pytest.raises(PermissionDeniedError):
        services.usage.dashboard(other, UsageQuery(JAN.start, JAN.end, everyone=True))
    with pytest.raises(PermissionDeniedError):
        services.usage.ranking(other, JAN)
    assert services.usage.summary(other, JAN).runs == 0
    # Below the service: the rollup rows themselves are hidden by row-level security.
    with services.uow(other) as w:
        assert w.usage.daily(JAN.start, JAN.end, user_id=ny.user_id) == []
        assert w.usage.recent_runs(utc(2026, 1, 1), utc(2026, 2, 1), user_id=ny.user_id) == []


def test_admin_sees_one_user_everyone_and_the_ranking(services: Services, ny: Principal) -> None:
    admin = factories.user(services.uow, "admin", role="admin")
    second = factories.user(services.uow, "second")
    factories.finished_run(
        services,
        second,
        "openai",
        "gpt-4o",
        utc(2026, 1, 14, 12, 0),
        input_tokens=1_000_000,
        output_tokens=100_000,
    )  # 2.5 + 1.0 = 3.5
    one = services.usage.dashboard(admin, UsageQuery(JAN.start, JAN.end, user_id=ny.user_id))
    assert one.summary.cost == Decimal("0.2205") and one.timezone == "America/New_York"
    everyone = services.usage.dashboard(admin, UsageQuery(JAN.start, JAN.end, everyone=True))
    ranks = {r.email: r for r in everyone.ranking}
    assert ranks[second.email].cost == Decimal("3.5") and ranks[ny.email].runs == 5
    order = [r.email for r in everyone.ranking]
    assert order.index(second.email) < order.index(ny.email)
    assert everyone.summary.runs >= 6 and everyone.budget is None
    assert {ny.email, second.email} <= {u.email for u in everyone.users}
    assert {r.user_email for r in everyone.runs.rows} >= {second.email}


def test_admin_price_change_and_reprice(services: Services, ny: Principal) -> None:
    admin = factories.user(services.uow, "admin", role="admin")
    new = services.pricing.add_price(
        admin,
        PriceInput(
            provider="openai",
            model="gpt-4o-mini*",
            input_per_mtok=Decimal("1"),
            output_per_mtok=Decimal("2"),
            cache_read_per_mtok=Decimal("0.5"),
            cache_write_per_mtok=Decimal("1"),
            effective_from=date(2026, 1, 10),
        ),
    )
    # New runs from that day use the new version; older history keeps its cost until repriced.
    assert (
        services.pricing.cost_for(
            "openai", "gpt-4o-mini", Usage(input_tokens=1_000_000), at=utc(2026, 1, 10)
        ).price_version
        == new.id
    )
    assert services.pricing.cost_for(
        "openai", "gpt-4o-mini", Usage(input_tokens=1_000_000), at=utc(2026, 1, 9, 23)
    ).cost == Decimal("0.15")
    assert services.usage.summary(ny, JAN).cost == Decimal("0.2205")
    with services.uow(ny) as w:  # RLS: only this user's rows are visible to the statement
        count = reprice(w, utc(2025, 12, 25))
        w.commit()
    assert count == 5
    # r1 (ended Jan 10 03:31 UTC) 0.1 + 0.02 = 0.12; r2 0.2 + 0.04 + 0.05 = 0.29
    s = services.usage.summary(ny, JAN)
    assert s.cost == Decimal("0.12") + Decimal("0.29") + Decimal("0.15")
    rows = services.usage.recent_runs(ny, UsageQuery(date(2025, 12, 1), JAN.end, page_size=10)).rows
    mini = sorted((r.started_at, r.cost, r.price_version) for r in rows if r.model == "gpt-4o-mini")
    assert [(c, v == new.id) for _, c, v in mini] == [
        (Decimal("0.15"), False),
        (Decimal("0.12"), True),
        (Decimal("0.29"), True),
    ]
    assert services.usage.summary(
        ny, UsageQuery(date(2025, 12, 1), date(2025, 12, 31))
    ).cost == Decimal("0.15")
    assert services.usage.summary(ny, JAN).unpriced_runs == 1


def test_only_admins_add_prices_and_history_is_kept(services: Services) -> None:
    user = factories.user(services.uow, "u")
    admin = factories.user(services.uow, "admin", role="admin")
    data = PriceInput(
        provider="openai_compatible",
        model="llama3.1:*",
        input_per_mtok=Decimal("0.1"),
        output_per_mtok=Decimal("0.1"),
        cache_read_per_mtok=Decimal(0),
        cache_write_per_mtok=Decimal(0),
        effective_from=date(2026, 1, 1),
    )
    with pytest.raises(PermissionDeniedError):
        services.pricing.add_price(user, data)
    before = len(services.pricing.list_prices(admin))
    services.pricing.add_price(admin, data)
    with pytest.raises(ConflictError):
        services.pricing.add_price(admin, data)
    with pytest.raises(ValidationError):
        services.pricing.add_price(admin, replace(data, model="x", input_per_mtok=Decimal(-1)))
    with pytest.raises(ValidationError):
        services.pricing.add_price(admin, replace(data, provider="nope"))
    assert len(services.pricing.list_prices(admin)) == before + 1
    assert services.pricing.cost_for(
        "openai_compatible",
        "llama3.1:8b",
        Usage(input_tokens=1_000_000),
        at=services.clock.now(),
    ).cost == Decimal("0.1")


def test_seeded_prices_are_in_the_database(services: Services) -> None:
    user = factories.user(services.uow, "u")
    current = {(p.provider, p.model): p for p in services.pricing.current_prices(user)}
    assert current[("offline", "*")].input_per_mtok == 0
    assert current[("openai", "o3*")].input_per_mtok == Decimal("2")  # the newer of two versions
    now = services.clock.now()
    offline = Usage(input_tokens=10**6, output_tokens=10**6)
    assert services.pricing.cost_for("offline", "offline-deterministic", offline, at=now).cost == 0
    some = Usage(input_tokens=1000, output_tokens=1000)
    unknown = services.pricing.cost_for("openai", "gpt-9-ultra", some, at=now)
    assert unknown.unpriced and unknown.cost is None and unknown.price_version is None


def test_rollup_days_follow_a_time_zone_change_after_rebuild(services: Services) -> None:
    who = factories.user(services.uow, "tz")
    factories.finished_run(
        services, who, "openai", "gpt-4o-mini", utc(2026, 1, 10, 3, 30), input_tokens=1000
    )
    assert [r.day for r in services.usage.daily(who, JAN)] == [date(2026, 1, 10)]
    with services.uow(who) as w:  # the row only: no rebuild yet
        assert w.usage.set_timezone(who.user_id, "America/New_York")
        w.commit()
    services.usage.rebuild_rollups(who)
    assert [r.day for r in services.usage.daily(who, JAN)] == [date(2026, 1, 9)]
    assert services.usage.summary(who, JAN).runs == 1
