"""Re-pricing and the demo seed as background jobs: an administrator queues them, a worker runs
them on the owner connection (every user's rows) while the job row stays the admin's, progress
is real (runs repriced, days seeded), the summary says what happened, and the results are the
ones the direct maintenance path gives. Anyone else is refused before anything is queued."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session

from jarvis.bootstrap import Services, build_services, usage_maintenance
from jarvis.clock import FixedClock
from jarvis.config import Settings
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher
from jarvis.services.jobs import JobView
from jarvis.services.pricing import PriceInput
from tests import factories

#: A fixed "now" at noon, so days and prices are the same in every comparison.
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def wait_until_finished(services: Services, who: Principal, job: JobView) -> JobView:
    deadline = time.monotonic() + 120
    while not job.finished:
        assert time.monotonic() < deadline, f"the job did not finish: {job}"
        time.sleep(0.05)
        job = services.jobs.status(who, job.id)
    return job


@pytest.fixture
def instance(
    fresh_database: Callable[[], Settings], fast_hasher: PasswordHasher
) -> Iterator[tuple[Services, Principal, Engine]]:
    """A database of its own with a job worker in this process, an administrator, and the
    owner engine (to look at every user's rows)."""
    s = fresh_database()
    owner = create_engine(s.owner_url())
    services = build_services(s, hasher=fast_hasher, clock=FixedClock(NOW))
    try:
        admin = factories.user(UnitOfWorkFactory(owner), "boss", role="admin")
        yield services, admin, owner
    finally:
        services.shutdown()
        services.engine.dispose()
        owner.dispose()


def _costs(conn: Connection | Session) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every run's price and cost, and every usage rollup row, in a stable order."""
    runs = conn.execute(
        text("select id, price_version, unpriced, total_cost from agent_runs order by id")
    ).all()
    rollups = conn.execute(
        text(
            "select user_id, day, provider, model, runs, failed_runs, unpriced_runs,"
            " total_tokens, cost from usage_daily order by user_id, day, provider, model"
        )
    ).all()
    return [tuple(r) for r in runs], [tuple(r) for r in rollups]


def _seed_runs(s: Settings, *, prefix: str = "costs", days: int = 8, runs: int = 400) -> None:
    with usage_maintenance(s) as maintenance:
        maintenance.seed_demo(
            users=3,
            days=days,
            runs=runs,
            now=NOW,
            prefix=prefix,
            knowledge=False,
            messages=False,
            password_hash="x",
        )


def _raise_a_price(services: Services, admin: Principal, owner: Engine, since: date) -> None:
    """A new, dearer version of the most used model's price, in force from ``since``."""
    with owner.connect() as conn:
        provider, model = conn.execute(
            text(
                "select provider, model from agent_runs group by 1, 2 order by count(*) desc"
                " limit 1"
            )
        ).one()
    services.pricing.add_price(
        admin,
        PriceInput(
            provider=provider,
            model=model,
            input_per_mtok=Decimal("123.45"),
            output_per_mtok=Decimal("678.9"),
            cache_read_per_mtok=Decimal("1.5"),
            cache_write_per_mtok=Decimal("2.5"),
            effective_from=since,
        ),
    )


def test_the_reprice_job_recomputes_every_users_costs_like_one_statement(
    instance: tuple[Services, Principal, Engine],
) -> None:
    services, admin, owner = instance
    _seed_runs(services.settings)
    since = (NOW - timedelta(days=4)).date()
    _raise_a_price(services, admin, owner, since)
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    with owner.connect() as conn:
        before = _costs(conn)
        to_reprice = conn.scalar(
            text("select count(*) from agent_runs where started_at >= :s and status <> 'running'"),
            {"s": start},
        )
    assert 0 < to_reprice < len(before[0])
    # What the single statement of before gives (in a transaction rolled back afterwards).
    with UnitOfWorkFactory(owner)() as w:
        w.prices.reprice_runs(start)
        w.usage.rebuild_rollups(from_day=since - timedelta(days=1))
        expected = _costs(w.session)
    assert expected != before  # the price change matters

    job = services.jobs.reprice(admin, since, batch_runs=25)  # many small slices
    assert job.kind == "reprice" and job.state in ("queued", "running")
    done = wait_until_finished(services, admin, job)
    assert done.state == "succeeded", done.error
    assert done.summary == (
        f"Repriced {to_reprice:,} runs started since {since.isoformat()} (UTC); rollups rebuilt."
    )
    assert done.done == done.total == to_reprice
    assert done.result == {"runs": to_reprice, "since": since.isoformat()}
    with owner.connect() as conn:
        assert _costs(conn) == expected
    # The job is the admin's: listed for them, on their page
    assert [j.id for j in services.jobs.recent(admin, "reprice")] == [job.id]


def test_reprice_progress_counts_the_runs_slice_by_slice(
    instance: tuple[Services, Principal, Engine],
) -> None:
    services, admin, _owner = instance
    _seed_runs(services.settings, days=6, runs=300)
    steps: list[tuple[int, int]] = []
    job = services.jobs.reprice(
        admin,
        (NOW - timedelta(days=10)).date(),
        batch_runs=40,
        here=True,
        watch=lambda d, t: steps.append((d, t)),
    )
    assert job.state == "succeeded" and job.done == job.total == 300
    assert steps[0] == (0, 300) and steps[-1] == (300, 300)
    assert len(steps) >= 4  # one step per slice of whole days, not one jump to the end
    dones = [d for d, _ in steps]
    assert dones == sorted(dones)
    assert {t for _, t in steps} == {300}


def test_after_a_seed_the_usage_pages_read_the_rollups_without_visiting_the_heap(
    instance: tuple[Services, Principal, Engine],
) -> None:
    """The seed leaves every table it wrote vacuumed: its visibility map set, so the usage
    pages' index-only scans read no table pages (the all-users rollups are compacted with
    VACUUM FULL, which does not set the map: they used to wait for autovacuum)."""
    services, _admin, owner = instance
    _seed_runs(services.settings, days=6, runs=300)
    with owner.connect() as conn:
        pages = conn.execute(
            text(
                "select relname, relpages, relallvisible from pg_class where relname in"
                " ('usage_daily', 'tool_usage_daily', 'usage_daily_all',"
                " 'tool_usage_daily_all', 'usage_user_daily') order by relname"
            )
        ).all()
        assert len(pages) == 5
        for name, total, visible in pages:
            assert total > 0 and visible == total, name
        conn.execute(text("set enable_seqscan = off"))
        conn.execute(text("set enable_bitmapscan = off"))
        plan = "\n".join(
            conn.scalars(
                text(
                    "explain (analyze, costs off, timing off, summary off)"
                    " select day from usage_user_daily where day >= :d"
                ),
                {"d": (NOW - timedelta(days=30)).date()},
            )
        )
    assert "Index Only Scan" in plan and "Heap Fetches: 0" in plan, plan


def test_only_administrators_may_reprice_or_seed_and_nothing_is_queued(
    services: Services, unique_email: Callable[[str], str]
) -> None:
    user = factories.user(services.uow, "plain")
    admin = factories.user(services.uow, "chief", role="admin")
    today = services.clock.now().date()
    with pytest.raises(PermissionDeniedError, match="Only administrators can recompute costs"):
        services.jobs.reprice(user, today)
    with pytest.raises(PermissionDeniedError, match="Only administrators can seed demo data"):
        services.jobs.seed_demo(user, users=1, days=1, runs=1)
    assert services.jobs.recent(user) == []
    # An administrator's bad request is refused before a job exists, too.
    with pytest.raises(ValidationError, match="in the future"):
        services.jobs.reprice(admin, today + timedelta(days=2))
    with pytest.raises(ValidationError, match="--prefix may hold"):
        services.jobs.seed_demo(admin, prefix="a b")
    with pytest.raises(ValidationError, match="--users must be 1 to"):
        services.jobs.seed_demo(admin, users=0)
    assert services.jobs.recent(admin) == []


def test_an_admin_demoted_before_the_job_runs_gets_a_clear_refusal(
    fresh_database: Callable[[], Settings], fast_hasher: PasswordHasher
) -> None:
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher, job_worker=False)  # queues, runs none
    owner = create_engine(s.owner_url())
    try:
        admin = factories.user(UnitOfWorkFactory(owner), "soon-ex", role="admin")
        job = services.jobs.reprice(admin, services.clock.now().date())
        assert services.jobs.status(admin, job.id).state == "queued"
        with owner.begin() as conn:
            conn.execute(text("update users set role = 'user' where id = :u"), {"u": admin.user_id})
        services.jobs.execute(job.id, admin.user_id)  # what the worker does
        done = services.jobs.status(admin, job.id)
        assert done.state == "failed"
        assert done.error == "Only administrators can recompute costs."
    finally:
        services.shutdown()
        services.engine.dispose()
        owner.dispose()


def _demo_rows(engine: Engine) -> list[list[tuple[object, ...]]]:
    """The demo data a seed wrote (no password hashes: their salt is random)."""
    with engine.connect() as conn:
        return [
            [tuple(r) for r in conn.execute(text(q)).all()]
            for q in (
                "select id, email, role from users where email like 'same-%' order by id",
                "select id, user_id, provider, model, status, started_at, total_cost"
                " from agent_runs order by id",
                "select id, run_id, tool_id, status from tool_calls order by id",
                "select id, user_id, title from conversations order by id",
                "select count(*), sum(cost) from usage_daily",
            )
        ]


def test_the_demo_seed_job_reports_days_and_writes_what_the_command_writes(
    instance: tuple[Services, Principal, Engine],
    fresh_database: Callable[[], Settings],
) -> None:
    services, admin, owner = instance
    options = {"users": 3, "days": 5, "runs": 150, "seed": 7, "prefix": "same"}
    job = services.jobs.seed_demo(admin, **options, knowledge=False)  # type: ignore[arg-type]
    assert job.kind == "demo_seed"
    done = wait_until_finished(services, admin, job)
    assert done.state == "succeeded", done.error
    assert done.summary is not None
    assert done.summary.startswith("Seeded 3 demo users with 150 runs (")
    assert "demo-password" not in str(done.summary) + str(done.result)
    assert done.done == done.total == 5  # one step per day
    assert isinstance(done.result, dict)
    assert done.result["login_email"] == "same-1@example.com"
    assert done.result["admin_created"] is False  # an admin existed: the demo users are users
    # The same seed straight through the maintenance service, on a database like this one
    other = fresh_database()
    other_owner = create_engine(other.owner_url())
    try:
        factories.user(UnitOfWorkFactory(other_owner), "boss", role="admin")
        with usage_maintenance(other, clock=FixedClock(NOW)) as maintenance:
            direct = maintenance.seed_demo(**options, knowledge=False, password_hash="x")  # type: ignore[arg-type]
        assert (direct.users, direct.runs, direct.messages, direct.tool_calls) == (
            3,
            150,
            done.result["messages"],
            done.result["tool_calls"],
        )
        assert _demo_rows(owner) == _demo_rows(other_owner)
    finally:
        other_owner.dispose()
    # A second seed with the same prefix fails with the reason, and adds nothing
    again = wait_until_finished(
        services,
        admin,
        services.jobs.seed_demo(admin, **options, knowledge=False),  # type: ignore[arg-type]
    )
    assert again.state == "failed" and again.error is not None
    assert "exist already" in again.error


def test_the_demo_seed_steps_go_day_by_day_then_user_by_user(
    instance: tuple[Services, Principal, Engine],
) -> None:
    services, admin, _owner = instance
    steps: list[tuple[int, int]] = []
    job = services.jobs.seed_demo(
        admin,
        users=2,
        days=3,
        runs=30,
        prefix="steps",
        here=True,
        watch=lambda d, t: steps.append((d, t)),
    )
    assert job.state == "succeeded", job.error
    assert steps == [(i, 5) for i in range(6)]  # 3 days, then 2 users' knowledge graphs
    assert job.summary is not None and "Knowledge graphs and memories:" in job.summary
