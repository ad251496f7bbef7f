"""Everyone's usage (the admin's all-users view, 0012's trigger-kept rollups) and each user's
own view against pandas over the raw runs and tool calls (the oracle): time zones with DST
changes, every status, unpriced runs, tool calls with and without latency; again after a time
zone change (a rebuild) and after a user is deleted."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import Engine, create_engine, text

from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.identity import Principal
from jarvis.services.usage import UsageQuery
from tests.factories import ensure_operator, insert_user
from tests.factories import finished_run as finish_run

ZONES = ["UTC", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]
MODELS = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "llama-unpriced"),
]
TOOLS = ["memory_search", "calculator", "web_search"]
START, END = date(2026, 3, 1), date(2026, 4, 10)  # New York and Sydney change clocks inside


def _pandas(owner: Engine, user_id: object | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily sums per (day, provider, model) and per-tool sums, by local day, from raw rows."""
    where = "" if user_id is None else "WHERE r.user_id = :u"
    with owner.connect() as conn:
        runs = pd.read_sql(
            text(
                "SELECT r.started_at, u.timezone, r.provider, r.model, r.status, r.unpriced, "
                "r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, "
                "r.total_tokens, coalesce(r.total_cost, 0)::text AS cost FROM agent_runs r "
                f"JOIN users u ON u.id = r.user_id {where}"
            ),
            conn,
            params={"u": user_id},
        )
        calls = pd.read_sql(
            text(
                "SELECT t.created_at, u.timezone, t.tool_id, t.status, t.latency_ms "
                "FROM tool_calls t JOIN users u ON u.id = t.user_id "
                + ("" if user_id is None else "WHERE t.user_id = :u")
            ),
            conn,
            params={"u": user_id},
        )
    runs["day"] = [
        ts.tz_convert(tz).date() for ts, tz in zip(runs.started_at, runs.timezone, strict=True)
    ]
    runs = runs[(runs.day >= START) & (runs.day <= END)]
    runs["failed"] = runs.status == "failed"
    runs["cost"] = runs.cost.map(Decimal)
    daily = runs.groupby(["day", "provider", "model"]).agg(
        runs=("status", "size"),
        failed_runs=("failed", "sum"),
        unpriced_runs=("unpriced", "sum"),
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
        cache_read_tokens=("cache_read_tokens", "sum"),
        cache_write_tokens=("cache_write_tokens", "sum"),
        total_tokens=("total_tokens", "sum"),
        cost=("cost", "sum"),
    )
    calls["day"] = [
        ts.tz_convert(tz).date() for ts, tz in zip(calls.created_at, calls.timezone, strict=True)
    ]
    calls = calls[(calls.day >= START) & (calls.day <= END)]
    tools = calls.groupby("tool_id").agg(
        calls=("status", "size"),
        errors=("status", lambda s: int((s == "error").sum())),
        denied=("status", lambda s: int((s == "denied").sum())),
        latency_max=("latency_ms", "max"),
    )
    return daily, tools


def _check(services: Services, owner: Engine, who: Principal, *, everyone: bool) -> None:
    dash = services.usage.dashboard(who, UsageQuery(START, END, everyone=everyone))
    daily, tools = _pandas(owner, None if everyone else who.user_id)
    got = {
        (d.day, d.provider, d.model): (
            d.runs,
            d.failed_runs,
            d.unpriced_runs,
            d.input_tokens,
            d.output_tokens,
            d.cache_read_tokens,
            d.cache_write_tokens,
            d.total_tokens,
            d.cost,
        )
        for d in dash.daily
    }
    want = {
        key: tuple(int(v) for v in row[:-1]) + (row[-1],)
        for key, row in zip(daily.index, daily.itertuples(index=False), strict=True)
    }
    assert got == want
    assert dash.summary.runs == int(daily.runs.sum()) and dash.summary.cost == sum(
        daily.cost, Decimal(0)
    )
    got_tools = {
        t.tool_id: (t.calls, t.errors, t.denied, t.max_latency_ms or 0) for t in dash.tools
    }
    want_tools = {
        tool: (
            int(r.calls),
            int(r.errors),
            int(r.denied),
            0 if pd.isna(r.latency_max) else int(r.latency_max),
        )
        for tool, r in zip(tools.index, tools.itertuples(index=False), strict=True)
    }
    assert got_tools == want_tools
    if everyone:  # the ranking: users by cost
        with owner.connect() as conn:
            runs = pd.read_sql(
                text(
                    "SELECT r.user_id, r.started_at, u.timezone, r.total_tokens, r.unpriced, "
                    "coalesce(r.total_cost, 0)::text AS cost FROM agent_runs r "
                    "JOIN users u ON u.id = r.user_id"
                ),
                conn,
            )
        runs["day"] = [
            ts.tz_convert(tz).date() for ts, tz in zip(runs.started_at, runs.timezone, strict=True)
        ]
        runs = runs[(runs.day >= START) & (runs.day <= END)]
        runs["cost"] = runs.cost.map(Decimal)
        per_user = runs.groupby("user_id").agg(
            runs=("day", "size"),
            unpriced=("unpriced", "sum"),
            tokens=("total_tokens", "sum"),
            cost=("cost", "sum"),
        )
        want_rank = {
            uid: (int(r.runs), int(r.unpriced), int(r.tokens), r.cost)
            for uid, r in zip(per_user.index, per_user.itertuples(index=False), strict=True)
        }
        got_rank = {
            u.user_id: (u.runs, u.unpriced_runs, u.total_tokens, u.cost) for u in dash.ranking
        }
        assert got_rank == want_rank
        assert [u.cost for u in dash.ranking] == sorted(
            (u.cost for u in dash.ranking), reverse=True
        )


def test_everyones_usage_matches_pandas(
    fresh_database: Callable[[], Settings], fast_hasher
) -> None:  # type: ignore[no-untyped-def]
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher, recover_runs=False, background=False)
    owner = create_engine(s.owner_url())
    try:
        ensure_operator(owner)  # the admin who makes the oracle's admin
        rng = random.Random(16)
        admin = insert_user(
            services.uow, "admin@oracle.test", role="admin", timezone="Europe/Paris"
        )
        users = [
            insert_user(services.uow, f"u{i}@oracle.test", timezone=ZONES[i % len(ZONES)])
            for i in range(8)
        ]
        for _ in range(160):
            who = rng.choice(users)
            provider, model = rng.choice(MODELS)
            started = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(
                minutes=rng.randrange(60 * 24 * 40)
            )
            finish_run(
                services,
                who,
                provider,
                model,
                started,
                input_tokens=rng.randrange(5000),
                output_tokens=rng.randrange(2000),
                cache_read_tokens=rng.choice([0, 0, rng.randrange(3000)]),
                status=rng.choice(["completed", "completed", "failed", "cancelled"]),
                tools=tuple(
                    (
                        rng.choice(TOOLS),
                        rng.choice(["ok", "ok", "error", "denied"]),
                        rng.choice([None, rng.randrange(1, 900)]),
                    )
                    for _ in range(rng.randrange(3))
                ),
            )
        _check(services, owner, admin, everyone=True)
        _check(services, owner, users[1], everyone=False)
        # a time zone change moves a user's rows to other days (a rebuild: deletes, re-adds)
        services.usage.set_timezone(users[2], "Pacific/Auckland")
        _check(services, owner, admin, everyone=True)
        # a deleted user's usage leaves everyone's totals
        with owner.begin() as conn:
            conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": users[3].user_id})
        _check(services, owner, admin, everyone=True)
        services.engine.dispose()
    finally:
        owner.dispose()
