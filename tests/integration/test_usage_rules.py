"""One rule for the usage rollups and one rounding rule for costs.

* A finished run, a run recovered as stale and a rebuild all add to ``usage_daily`` /
  ``tool_usage_daily`` through ``jarvis_usage_rollup_add`` (migration 0010): the rollups they
  give are identical, also with a non-superuser owner for recovery.
* Live pricing and ``jarvis usage reprice`` round costs alike: a reprice with unchanged prices
  changes nothing (it used to move ties by $0.000001).
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from jarvis.bootstrap import Services, build_services
from jarvis.cost_rounding import round_cost, sql_round_cost
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.identity import Principal
from jarvis.services.usage import reprice
from tests import factories
from tests.integration.weak_owner import weak_owner_database  # noqa: F401 - fixture

Rollups = tuple[list[tuple[object, ...]], list[tuple[object, ...]]]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rollups(w: UnitOfWork, user_id: uuid.UUID) -> Rollups:
    """Every rollup row of one user, in a stable order."""
    days = w.session.execute(
        text(
            "select day, provider, model, runs, failed_runs, unpriced_runs, input_tokens,"
            " output_tokens, cache_read_tokens, cache_write_tokens, total_tokens, cost"
            " from usage_daily where user_id = :u order by day, provider, model"
        ),
        {"u": user_id},
    )
    tools = w.session.execute(
        text(
            "select day, tool_id, calls, errors, denied, latency_count, latency_ms_sum,"
            " latency_ms_max from tool_usage_daily where user_id = :u order by day, tool_id"
        ),
        {"u": user_id},
    )
    return [tuple(r) for r in days], [tuple(r) for r in tools]


def add_running_run(
    w: UnitOfWork,
    who: Principal,
    model: str,
    started_at: datetime,
    tokens: tuple[int, int, int, int],
    tools: tuple[factories.ToolCallSpec, ...] = (),
) -> uuid.UUID:
    """A run a dead process left ``running`` (tokens counted so far, tool calls made)."""
    return factories.add_run(
        w,
        who,
        model=model,
        started_at=started_at,
        heartbeat_at=started_at,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cache_read_tokens=tokens[2],
        cache_write_tokens=tokens[3],
        tools=tools,
    ).id


def test_finished_runs_recovered_runs_and_rebuilds_give_identical_rollups(
    services: Services,
) -> None:
    who = factories.user(services.uow, "rule", timezone="America/New_York")
    # Finished runs (the chat's path): several per local day and model, every status, every
    # token type, an unpriced model, tool calls of every status, runs across midnight.
    for started, model, status, tokens, tools in (
        (utc(2026, 1, 10, 4, 59), "gpt-4o-mini", "completed", (1000, 200, 300, 0), ()),
        (utc(2026, 1, 10, 5, 1), "gpt-4o-mini", "completed", (1500, 20, 0, 0), ()),
        (
            utc(2026, 1, 10, 6, 0),
            "gpt-4o-mini",
            "failed",
            (10, 1, 0, 0),
            (("memory_search", "ok", 40), ("web_search", "error", 900)),
        ),
        (
            utc(2026, 1, 11, 4, 59, 59),
            "gpt-4o",
            "cancelled",
            (333, 7, 0, 0),
            (("calculator", "denied", None), ("memory_search", "ok", 75)),
        ),
        (utc(2026, 1, 11, 12, 0), "llama-unpriced", "completed", (50, 50, 0, 0), ()),
    ):
        factories.finished_run(
            services,
            who,
            "openai",
            model,
            started,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cache_read_tokens=tokens[2],
            cache_write_tokens=tokens[3],
            status=status,
            tools=tools,
        )
    # Runs a dead process left running (recovery's path), on days and models shared with the
    # finished runs and on their own; one used no tokens (then it is not unpriced).
    with services.uow(who) as w:
        add_running_run(
            w,
            who,
            "gpt-4o-mini",
            utc(2026, 1, 10, 7),
            (400, 40, 0, 0),
            (("memory_search", "ok", 60),),
        )
        add_running_run(w, who, "gpt-4o", utc(2026, 1, 12, 3), (0, 0, 0, 0))
        add_running_run(
            w, who, "gpt-4o", utc(2026, 1, 12, 9), (5, 5, 5, 5), (("calculator", "error", 3),)
        )
        w.commit()
    with services.uow(who) as w:
        assert w.runs.fail_stale(utc(2026, 1, 13), "The run was interrupted.") >= 3
        w.commit()

    with services.uow(who) as w:
        recorded = rollups(w, who.user_id)
    days, tools = recorded
    assert sum(d[3] for d in days) == 8  # every run, finished or recovered, counts once
    assert sum(d[4] for d in days) == 1 + 3  # recovered runs count as failed
    assert sum(d[5] for d in days) == 1 + 2  # and as unpriced when they had used tokens
    assert {t[1] for t in tools} == {"memory_search", "web_search", "calculator"}

    # A full rebuild (time zone change) and a rebuild from a day on (as reprice does) give
    # the very same rows.
    services.usage.rebuild_rollups(who)
    with services.uow(who) as w:
        assert rollups(w, who.user_id) == recorded
        w.usage.rebuild_rollups(from_day=date(2026, 1, 11))
        assert rollups(w, who.user_id) == recorded


def test_a_reprice_with_unchanged_prices_changes_no_cost(services: Services) -> None:
    """Live pricing and reprice round alike (half away from zero), also on exact ties."""
    who = factories.user(services.uow, "noop", timezone="Europe/Paris")
    rng = random.Random(14)
    models = ("gpt-4o", "gpt-4o-mini", "o3", "claude-sonnet-4-20250514", "llama-unpriced")
    with services.uow(who) as w:
        for i in range(400):
            model = rng.choice(models)
            run = factories.add_run(
                w,
                who,
                provider="anthropic" if model.startswith("claude") else "openai",
                model=model,
                status=rng.choice(("completed", "completed", "failed", "cancelled")),
                started_at=utc(2026, 1, 1) + timedelta(minutes=53 * i),
                input_tokens=rng.randint(0, 5000),
                output_tokens=rng.randint(0, 2000),
                cache_read_tokens=rng.choice((0, rng.randint(0, 3000))),
                cache_write_tokens=rng.choice((0, rng.randint(0, 999))),
            )
            run.finished_at = run.started_at + timedelta(seconds=30)
            services.run_recorder.on_run_finished(w, run)
        # gpt-4o input costs $2.50 per 1M: an odd input count alone is an exact tie.
        for n in (1, 3, 1001, 2_000_001):
            run = factories.add_run(
                w,
                who,
                model="gpt-4o",
                status="completed",
                started_at=utc(2026, 1, 14),
                finished_at=utc(2026, 1, 14, 0, 1),
                input_tokens=n,
            )
            services.run_recorder.on_run_finished(w, run)
        w.commit()
    with services.uow(who) as w:
        runs_sql = text(
            "select id, total_cost, price_version, unpriced from agent_runs"
            " where user_id = :u order by id"
        )
        before = [tuple(r) for r in w.session.execute(runs_sql, {"u": who.user_id})]
        rolled = rollups(w, who.user_id)
        assert reprice(w, utc(2025, 12, 31)) == len(before) == 404
        after = [tuple(r) for r in w.session.execute(runs_sql, {"u": who.user_id})]
        assert [b for b, a in zip(before, after, strict=True) if a != b] == []
        assert rollups(w, who.user_id) == rolled
        # The ties themselves: 1 token is $0.0000025 -> $0.000003, away from zero.
        tie = w.session.scalar(
            text(
                "select total_cost from agent_runs where user_id = :u and model = 'gpt-4o'"
                " and input_tokens = 1 and output_tokens = 0"
            ),
            {"u": who.user_id},
        )
        assert tie == Decimal("0.000003")


def test_python_and_sql_round_costs_alike(app_engine: Engine) -> None:
    values = [
        Decimal("0.0000005"),
        Decimal("0.0000015"),
        Decimal("0.0000025"),
        Decimal("1.2345675"),
        Decimal("-0.0000025"),
        Decimal("0.00000049999"),
        Decimal("12.3456785000001"),
        Decimal("0"),
    ]
    with app_engine.connect() as conn:
        for v in values:
            in_sql = conn.scalar(text(f"select {sql_round_cost('CAST(:v AS numeric)')}"), {"v": v})
            assert in_sql == round_cost(v), v


# -- recovery with an owner that is not a superuser -----------------------------------------


def test_recovery_by_a_non_superuser_owner_counts_runs_as_a_rebuild_would(
    weak_owner_database,  # noqa: F811 - the imported fixture
    fast_hasher,
) -> None:  # type: ignore[no-untyped-def]
    superuser, settings = weak_owner_database
    owner = UnitOfWorkFactory(superuser)
    who = factories.user(owner, "weak", timezone="Asia/Tokyo")
    uid = who.user_id
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    with owner(who) as w:
        add_running_run(w, who, "gpt-4o", long_ago, (120, 30, 0, 0), (("calculator", "ok", 7),))
        w.commit()
    services = build_services(settings, hasher=fast_hasher)  # start-up recovery, as the app
    services.engine.dispose()

    def snapshot() -> Rollups:
        with Session(superuser) as s:
            days = s.execute(
                text(
                    "select day, model, runs, failed_runs, unpriced_runs, total_tokens, cost"
                    " from usage_daily where user_id = :u"
                ),
                {"u": uid},
            )
            tools = s.execute(
                text(
                    "select day, tool_id, calls, latency_ms_sum from tool_usage_daily"
                    " where user_id = :u"
                ),
                {"u": uid},
            )
            return [tuple(r) for r in days], [tuple(r) for r in tools]

    recovered = snapshot()
    assert [d[1:] for d in recovered[0]] == [("gpt-4o", 1, 1, 1, 150, Decimal(0))]
    assert [t[1:] for t in recovered[1]] == [("calculator", 1, 7)]
    with owner() as w:
        w.usage.rebuild_rollups(user_ids=[uid])
        w.commit()
    assert snapshot() == recovered
