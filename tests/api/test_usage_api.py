"""``/usage`` over HTTP: the summary per model and per tool, the daily series, the current
month with budget and projection, the runs page; money as six-decimal strings; another user's
usage is never visible (admins may ask for it); bad parameters are a 422 naming them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.api.conftest import ApiClient, principal, problem, register_and_login


def _at(day: date, minute: int) -> datetime:
    return datetime.combine(day, time(0, minute), UTC)


class Usage:
    """Alice's and Bob's runs over the last three days (UTC users)."""

    def __init__(self, api: ApiClient) -> None:
        services: Services = api.app_services
        self.today = datetime.now(UTC).date()
        self.alice, self.bob = register_and_login(api), register_and_login(api)
        alice, bob = principal(api, self.alice), principal(api, self.bob)
        d2, d1, d0 = (self.today - timedelta(days=n) for n in (2, 1, 0))
        run = factories.finished_run
        self.runs = [  # (day, cost) of Alice's runs, oldest first
            (d2, Decimal("3.50")),
            (d1, Decimal("0.15")),
            (d1, Decimal(0)),  # unpriced
            (d1, Decimal(0)),  # failed
            (d0, Decimal("0.60")),
        ]
        tools = (("calculator", "ok", 30), ("calculator", "ok", 50), ("web_search", "denied", None))
        run(services, alice, "openai", "gpt-4o", _at(d2, 5), input_tokens=1_000_000,
            output_tokens=100_000, tools=tools)  # fmt: skip
        run(services, alice, "openai", "gpt-4o-mini", _at(d1, 5), input_tokens=1_000_000)
        run(services, alice, "openai", "mystery-model", _at(d1, 10), input_tokens=500)
        run(services, alice, "openai", "gpt-4o-mini", _at(d1, 15), status="failed")
        run(services, alice, "openai", "gpt-4o-mini", _at(d0, 1), output_tokens=1_000_000)
        run(services, bob, "openai", "gpt-4o", _at(d0, 2), input_tokens=2_000_000)
        services.usage.set_user_budget(factories.OPERATOR, alice.user_id, "10")


@pytest.fixture
def usage(api: ApiClient) -> Usage:
    return Usage(api)


def test_the_summary_has_totals_per_model_and_per_tool(api: ApiClient, usage: Usage) -> None:
    response = api.get("/usage", headers=usage.alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {
        "from": (usage.today - timedelta(days=29)).isoformat(),
        "to": usage.today.isoformat(),
        "timezone": "UTC",
    }
    totals = body["totals"]
    assert totals["runs"] == 5 and totals["failed_runs"] == 1 and totals["unpriced_runs"] == 1
    assert totals["input_tokens"] == 2_000_500 and totals["output_tokens"] == 1_100_000
    assert totals["total_tokens"] == 3_100_500
    assert totals["cost_usd"] == "4.250000"  # Bob's $5.00 is not in it

    models = [(m["model"], m["runs"], m["cost_usd"]) for m in body["models"]]
    assert models == [
        ("gpt-4o", 1, "3.500000"),
        ("gpt-4o-mini", 3, "0.750000"),
        ("mystery-model", 1, "0.000000"),
    ]
    assert body["models"][2]["unpriced_runs"] == 1
    tools = {t["tool_id"]: t for t in body["tools"]}
    assert tools["calculator"]["calls"] == 2 and tools["calculator"]["avg_latency_ms"] == 40.0
    assert tools["calculator"]["max_latency_ms"] == 50 and tools["web_search"]["denied"] == 1

    only_mini = api.get("/usage", params={"model": "gpt-4o-mini"}, headers=usage.alice.headers)
    assert only_mini.json()["totals"]["cost_usd"] == "0.750000"
    two = api.get(
        "/usage",
        params=[("model", "gpt-4o"), ("model", "gpt-4o-mini")],
        headers=usage.alice.headers,
    )
    assert two.json()["totals"]["cost_usd"] == "4.250000"

    yesterday = (usage.today - timedelta(days=1)).isoformat()
    one_day = api.get(
        "/usage", params={"from": yesterday, "to": yesterday}, headers=usage.alice.headers
    ).json()
    assert one_day["totals"]["runs"] == 3 and one_day["totals"]["cost_usd"] == "0.150000"


def test_the_daily_series_has_every_day_with_its_models(api: ApiClient, usage: Usage) -> None:
    start = usage.today - timedelta(days=3)
    response = api.get(
        "/usage/daily",
        params={"from": start.isoformat(), "to": usage.today.isoformat()},
        headers=usage.alice.headers,
    )
    assert response.status_code == 200, response.text
    days = response.json()["days"]
    assert [d["day"] for d in days] == [(start + timedelta(days=n)).isoformat() for n in range(4)]
    assert [d["cost_usd"] for d in days] == ["0.000000", "3.500000", "0.150000", "0.600000"]
    assert days[0]["runs"] == 0 and days[0]["models"] == []  # a quiet day is there, as zeros
    assert [(m["model"], m["runs"]) for m in days[2]["models"]] == [
        ("gpt-4o-mini", 2),
        ("mystery-model", 1),
    ]
    assert days[2]["failed_runs"] == 1 and days[2]["unpriced_runs"] == 1

    bob_days = api.get(
        "/usage/daily", params={"from": start.isoformat()}, headers=usage.bob.headers
    ).json()["days"]
    assert [d["cost_usd"] for d in bob_days] == ["0.000000"] * 3 + ["5.000000"]


def test_the_current_month_has_the_budget_and_a_projection(api: ApiClient, usage: Usage) -> None:
    response = api.get("/usage/current-month", headers=usage.alice.headers)
    assert response.status_code == 200, response.text
    month = response.json()
    month_start = usage.today.replace(day=1)
    in_month = [cost for day, cost in usage.runs if day >= month_start]
    spent = sum(in_month, Decimal(0))
    assert month["month_start"] == month_start.isoformat()
    assert month["today"] == usage.today.isoformat() and month["timezone"] == "UTC"
    assert month["runs"] == len(in_month)
    assert Decimal(month["cost_usd"]) == spent
    assert Decimal(month["projected_cost_usd"]) >= spent
    budget = month["budget"]
    assert budget["budget_usd"] == "10.000000" and budget["source"] == "user"
    assert Decimal(budget["spent_usd"]) == spent
    assert budget["fraction"] == pytest.approx(float(spent / 10), abs=1e-4)
    assert not budget["exceeded"]


def test_the_runs_are_paged_newest_first(api: ApiClient, usage: Usage) -> None:
    first = api.get("/usage/runs", params={"page_size": 2}, headers=usage.alice.headers).json()
    assert first["page"] == 0 and first["page_size"] == 2 and first["has_more"] is True
    newest = first["runs"][0]
    assert newest["model"] == "gpt-4o-mini" and newest["output_tokens"] == 1_000_000
    assert newest["cost_usd"] == "0.600000" and newest["status"] == "completed"
    assert newest["user_email"] == usage.alice.email

    rest = api.get(
        "/usage/runs", params={"page_size": 2, "page": 1}, headers=usage.alice.headers
    ).json()
    last = api.get(
        "/usage/runs", params={"page_size": 2, "page": 2}, headers=usage.alice.headers
    ).json()
    assert last["has_more"] is False
    runs = first["runs"] + rest["runs"] + last["runs"]
    assert len(runs) == 5 and len({r["id"] for r in runs}) == 5
    assert [r["started_at"] for r in runs] == sorted((r["started_at"] for r in runs), reverse=True)
    mystery = next(r for r in runs if r["model"] == "mystery-model")
    assert mystery["unpriced"] is True and mystery["cost_usd"] is None
    assert {r["status"] for r in runs} == {"completed", "failed"}
    assert {r["user_email"] for r in runs} == {usage.alice.email}


def test_another_users_usage_is_for_administrators_only(api: ApiClient, usage: Usage) -> None:
    bob_id = str(usage.bob.user_id)
    for path in ("/usage", "/usage/daily", "/usage/current-month", "/usage/runs"):
        problem(
            api.get(path, params={"user_id": bob_id}, headers=usage.alice.headers),
            403,
            "permission_denied_error",
        )
        problem(api.get(path, params={"everyone": "true"}, headers=usage.alice.headers), 403)

    admin_email = factories.unique_email("usage-admin")
    factories.admin_account(api.app_services, admin_email)
    admin = api.post("/auth/login", json={"email": admin_email, "password": factories.PASSWORD})
    headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    bobs = api.get("/usage", params={"user_id": bob_id}, headers=headers).json()
    assert bobs["totals"]["cost_usd"] == "5.000000"
    everyone = api.get("/usage", params={"everyone": "true"}, headers=headers).json()
    assert Decimal(everyone["totals"]["cost_usd"]) >= Decimal("9.25")
    all_month = api.get("/usage/current-month", params={"everyone": "true"}, headers=headers)
    assert all_month.json()["budget"] is None


def test_bad_parameters_are_a_422_naming_them(api: ApiClient) -> None:
    me = register_and_login(api)
    today = datetime.now(UTC).date()

    def field(path: str, **params: object) -> str:
        body = problem(api.get(path, params=params, headers=me.headers), 422, "validation_error")
        return str(body["errors"][0]["field"])

    backwards = {"from": today.isoformat(), "to": (today - timedelta(days=1)).isoformat()}
    assert field("/usage", **backwards) == "query.to"
    too_long = {"from": (today - timedelta(days=400)).isoformat(), "to": today.isoformat()}
    assert field("/usage/daily", **too_long) == "query.from"
    assert field("/usage", **{"from": "last tuesday"}) == "query.from"
    assert field("/usage", to="1700000000") == "query.to"  # not read as a Unix timestamp
    # days at the ends of the calendar (a day before or after them is no date; the fuzz test
    # found to=0001-01-01 answered by a 500)
    for path in ("/usage", "/usage/daily", "/usage/runs"):
        assert field(path, to="0001-01-01") == "query.to"
        assert field(path, **{"from": "9999-12-31", "to": "9999-12-31"}) == "query.from"
    assert field("/usage/runs", page_size=0) == "query.page_size"
    assert field("/usage/runs", page_size=10_000) == "query.page_size"
    assert field("/usage/runs", page=-1) == "query.page"
    assert field("/usage", user_id="bob") == "query.user_id"
    assert field("/usage", model="\x00") == "query.model"
