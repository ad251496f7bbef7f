"""`jarvis demo seed` and `jarvis usage reprice` as background jobs from the command line: by
default the command queues the job (the operator admin's) and follows it until a worker has
run it, printing its summary; `--no-wait` only queues it; `--inline` runs it in the command
with progress lines. Exit codes and summary lines stay what they were."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import create_engine, text

from jarvis.bootstrap import Services, build_services
from jarvis.cli import main
from jarvis.config import Settings, get_settings
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher
from tests import factories
from tests.conftest import app_environment


@pytest.fixture
def with_worker(
    fresh_database: Callable[[], Settings],
    fast_hasher: PasswordHasher,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Services, Principal]]:
    """A database of its own, the app's job worker running on it (in this process), its
    administrator, and the command line pointed at it."""
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher)
    owner = create_engine(s.owner_url())
    try:
        admin = factories.user(
            UnitOfWorkFactory(owner), "root", email="root@example.com", role="admin"
        )
        for var, value in app_environment(s).items():
            monkeypatch.setenv(var, value)
        get_settings.cache_clear()
        yield services, admin
    finally:
        get_settings.cache_clear()
        services.shutdown()
        services.engine.dispose()
        owner.dispose()


def test_demo_seed_and_reprice_are_jobs_the_command_follows(
    with_worker: tuple[Services, Principal], capsys: pytest.CaptureFixture[str]
) -> None:
    services, admin = with_worker
    prefix = f"cli{uuid.uuid4().hex[:4]}"
    code = main(
        ["demo", "seed", "--users", "2", "--days", "3", "--runs", "40", "--prefix", prefix]
        + ["--no-knowledge"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Seeded 2 demo users with 40 runs (" in out.out
    assert f"Demo login (a user): {prefix}-1@example.com / demo-password" in out.out
    [seeded] = services.jobs.recent(admin, "demo_seed")  # the operator admin's job
    assert seeded.state == "succeeded" and seeded.done == seeded.total == 3

    since = (date.today() - timedelta(days=5)).isoformat()
    assert main(["usage", "reprice", "--since", since, "--no-wait"]) == 0
    queued = capsys.readouterr().out.strip()
    match = re.fullmatch(r"Queued job ([0-9a-f-]{36})\.", queued)
    assert match, queued
    job = services.jobs.status(admin, uuid.UUID(match.group(1)))
    deadline = time.monotonic() + 60
    while not job.finished:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = services.jobs.status(admin, job.id)
    assert job.summary == f"Repriced 40 runs started since {since} (UTC); rollups rebuilt."

    assert main(["usage", "reprice", "--since", since, "--inline"]) == 0
    out = capsys.readouterr()
    assert "40 of 40 (100 %)" in out.out
    assert f"Repriced 40 runs started since {since} (UTC); rollups rebuilt." in out.out
    assert len(services.jobs.recent(admin, "reprice")) == 2


def test_a_failed_job_is_one_error_line_and_exit_1(
    with_worker: tuple[Services, Principal], capsys: pytest.CaptureFixture[str]
) -> None:
    services, _admin = with_worker
    engine = create_engine(services.settings.owner_url())
    try:
        with engine.begin() as conn:  # demo users with that prefix exist already
            conn.execute(
                text(
                    "insert into users (email, display_name, password_hash)"
                    " values ('taken-1@example.com', 'taken', 'x')"
                )
            )
    finally:
        engine.dispose()
    args = ["demo", "seed", "--users", "1", "--days", "1", "--runs", "5", "--prefix", "taken"]
    assert main([*args, "--no-knowledge"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "jarvis: Demo users with the prefix 'taken' exist already (taken-1@example.com); "
        "use another --prefix."
    ]
