"""Background jobs on the procrastinate queue: enqueue -> a worker runs it as its user ->
progress -> a summary or a clear error; another user never sees it; a worker in another
process (``jarvis worker``) picks jobs up; the daily purge of ended sign-in state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.db.engine import create_owner_engine
from jarvis.db.queue import PURGE_CRON, PURGE_SIGN_IN_STATE, RUN_JOB, JobQueue
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import NotFoundError
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher
from jarvis.services.jobs import JobView
from tests import factories
from tests.conftest import app_environment

ROOT = Path(__file__).resolve().parents[2]


def wait_until_finished(
    services: Services, who: Principal, job: JobView, timeout: float = 60
) -> tuple[JobView, list[JobView]]:
    """Poll the job as its owner would (the page does every second); every view seen."""
    seen = [job]
    deadline = time.monotonic() + timeout
    while not job.finished:
        assert time.monotonic() < deadline, f"the job did not finish: {job}"
        time.sleep(0.05)
        job = services.jobs.status(who, job.id)
        seen.append(job)
    return job, seen


def entities_csv(n: int) -> bytes:
    lines = ["name,type,description"] + [f"Thing {i},gadget,gadget number {i}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_import_job_runs_on_the_worker_with_progress_and_a_summary(
    committed_services: Services, committed_user: Callable[[str], Principal]
) -> None:
    who = committed_user("jobs-import")
    job = committed_services.jobs.import_graph(who, entities_csv(600), "csv")
    assert job.state in ("queued", "running")  # the click returns at once
    done, seen = wait_until_finished(committed_services, who, job)
    assert done.state == "succeeded", done.error
    assert done.summary == "Imported 600 new entities (0 already existed) and 0 relations."
    assert done.done == done.total == 600
    assert done.fraction == 1.0
    assert done.started_at is not None and done.finished_at is not None
    # progress only grows, and the bar was never past the end
    fractions = [v.fraction for v in seen]
    assert fractions == sorted(fractions)
    assert committed_services.knowledge_graph.stats(who)["entities"] == 600
    assert [j.id for j in committed_services.jobs.recent(who, "graph_import")] == [job.id]


def test_a_rejected_import_fails_with_the_rows_and_writes_nothing(
    committed_services: Services, committed_user: Callable[[str], Principal]
) -> None:
    who = committed_user("jobs-reject")
    bad = b"source,target,type,weight\nA,B,knows,1\nC,D,knows,heavy\n"
    job = committed_services.jobs.import_graph(who, bad, "csv")
    done, _ = wait_until_finished(committed_services, who, job)
    assert done.state == "failed"
    assert done.error == "Nothing imported: 1 row(s) rejected. Fix them and retry."
    assert done.result == [
        {"row": 2, "kind": "relation", "reason": "weight 'heavy' is not a number"}
    ]
    assert committed_services.knowledge_graph.stats(who)["entities"] == 0


def test_a_failing_job_ends_with_its_error_message(
    committed_services: Services, committed_user: Callable[[str], Principal]
) -> None:
    who = committed_user("jobs-fail")
    job = committed_services.jobs.reembed(who, "openai")  # no OpenAI key stored
    done, _ = wait_until_finished(committed_services, who, job)
    assert done.state == "failed"
    assert done.error == "OpenAI embeddings need your OpenAI key: add it on the Secrets page first."
    assert done.progress_text == done.error


def test_an_unexpected_error_says_so_without_its_details(
    committed_services: Services, committed_user: Callable[[str], Principal]
) -> None:
    who = committed_user("jobs-crash")

    def crash(_job: object, _progress: object) -> object:
        raise RuntimeError("secret host db.internal:5432")

    committed_services.jobs.register("reembed", crash)  # type: ignore[arg-type]
    job = committed_services.jobs.reembed(who, "lexical")
    done, _ = wait_until_finished(committed_services, who, job)
    assert done.state == "failed"
    assert done.error is not None and "db.internal" not in done.error
    assert "failed unexpectedly" in done.error


def test_a_job_is_invisible_to_another_user(
    committed_services: Services, committed_user: Callable[[str], Principal], app_engine: Engine
) -> None:
    alice, bob = committed_user("jobs-alice"), committed_user("jobs-bob")
    job = committed_services.jobs.import_graph(alice, entities_csv(3), "csv")
    wait_until_finished(committed_services, alice, job)
    with pytest.raises(NotFoundError):
        committed_services.jobs.status(bob, job.id)
    assert committed_services.jobs.recent(bob) == []
    # straight from the app role: as bob, and as nobody, the row does not exist
    for user_id in (str(bob.user_id), ""):
        with app_engine.begin() as conn:
            conn.execute(text("select set_config('app.user_id', :u, true)"), {"u": user_id})
            assert (
                conn.scalar(text("select count(*) from jobs where id = :id"), {"id": job.id}) == 0
            )
            changed = conn.execute(
                text("update jobs set summary = 'mine' where id = :id"), {"id": job.id}
            )
            assert changed.rowcount == 0
    assert committed_services.jobs.status(alice, job.id).summary is not None


def test_the_queue_holds_only_ids(
    committed_services: Services, committed_user: Callable[[str], Principal], owner_engine: Engine
) -> None:
    who = committed_user("jobs-ids")
    job = committed_services.jobs.import_graph(who, b"name,type\nSecret Project Z,plan\n", "csv")
    wait_until_finished(committed_services, who, job)
    with owner_engine.connect() as conn:
        args = conn.scalars(
            text("select args::text from procrastinate.procrastinate_jobs where task_name = :t"),
            {"t": RUN_JOB},
        ).all()
    assert all("Secret Project" not in a for a in args)


@pytest.fixture
def queue_only(
    fresh_database: Callable[[], Settings], fast_hasher: PasswordHasher
) -> Iterator[tuple[Services, Principal]]:
    """A database of its own (no other test's worker can reach it) and services that queue
    jobs but run none (JARVIS_JOB_WORKER=off), with a user."""
    s = fresh_database()
    services = build_services(s, hasher=fast_hasher, job_worker=False)
    owner = create_owner_engine(s)
    try:
        yield services, factories.user(UnitOfWorkFactory(owner), "jobs-remote")
    finally:
        services.shutdown()
        services.engine.dispose()
        owner.dispose()


@pytest.mark.slow
def test_a_worker_in_another_process_picks_the_job_up(
    queue_only: tuple[Services, Principal],
) -> None:
    services, who = queue_only
    s = services.settings
    job = services.jobs.import_graph(who, entities_csv(40), "csv")
    time.sleep(1.0)
    assert services.jobs.status(who, job.id).state == "queued"  # nobody works here
    env = dict(os.environ)
    env.update(app_environment(s))
    worker = subprocess.Popen(
        [sys.executable, "-m", "jarvis.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # the worker process imports Jarvis and loads the embedder first: minutes on a busy CI
        done, _ = wait_until_finished(services, who, job, timeout=240)
        assert done.state == "succeeded", done.error
        assert services.knowledge_graph.stats(who)["entities"] == 40
    finally:
        worker.send_signal(signal.SIGTERM)  # stops after the jobs in hand
        try:
            out, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            out, _ = worker.communicate()
        print(out)
    assert worker.returncode == 0, out
    assert "Job worker stopped." in out


def test_the_purge_is_scheduled_daily() -> None:
    queue = JobQueue("postgresql://x@localhost/x", run_job=lambda *_: None, purge=lambda: None)
    app = queue._app(max_size=1)  # noqa: SLF001 - the app the workers run
    periodic = list(app.periodic_registry.periodic_tasks.values())
    assert [(p.task.name, p.cron) for p in periodic] == [(PURGE_SIGN_IN_STATE, PURGE_CRON)]


def test_a_worker_stopped_as_it_starts_ends_and_a_later_one_still_works(
    settings: Settings,
    app_engine: Engine,
    fast_hasher: PasswordHasher,
    committed_user: Callable[[str], Principal],
) -> None:
    # A server stopped right after it starts (a deploy, Ctrl-C) used to leave the in-process
    # worker's thread running, and each stop waited out the whole timeout.
    for _ in range(3):
        services = build_services(settings, engine=app_engine, hasher=fast_hasher)
        assert services.queue is not None
        thread = services.queue._thread  # noqa: SLF001 - the worker thread itself
        assert thread is not None and thread.is_alive()
        services.shutdown()
        assert not thread.is_alive()
    services = build_services(settings, engine=app_engine, hasher=fast_hasher)
    try:
        who = committed_user("jobs-restart")
        done, _ = wait_until_finished(
            services, who, services.jobs.import_graph(who, entities_csv(5), "csv")
        )
        assert done.state == "succeeded", done.error
    finally:
        services.shutdown()


def _session_rows(owner_engine: Engine, user_id: uuid.UUID, *, live: bool) -> uuid.UUID:
    """A session (refresh-token family) with a browser credential; live or ended."""
    now = datetime.now(UTC)
    family = uuid.uuid4()
    expires = now + timedelta(days=7) if live else now - timedelta(hours=1)
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "insert into refresh_tokens (user_id, family_id, token_hash, expires_at) "
                "values (:u, :f, :h, :e)"
            ),
            {"u": user_id, "f": family, "h": uuid.uuid4().hex * 2, "e": expires},
        )
        conn.execute(
            text(
                "insert into browser_credentials (user_id, session_id, role, token_hash, "
                "expires_at) values (:u, :f, 'user', :h, :e)"
            ),
            {"u": user_id, "f": family, "h": uuid.uuid4().hex * 2, "e": expires},
        )
    return family


def _count(owner_engine: Engine, family: uuid.UUID) -> tuple[int, int]:
    with owner_engine.connect() as conn:
        tokens = conn.scalar(
            text("select count(*) from refresh_tokens where family_id = :f"), {"f": family}
        )
        browsers = conn.scalar(
            text("select count(*) from browser_credentials where session_id = :f"), {"f": family}
        )
    return int(tokens or 0), int(browsers or 0)


def test_the_purge_task_removes_ended_sign_in_state_and_keeps_live_sessions(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
    owner_engine: Engine,
) -> None:
    who = committed_user("jobs-purge")
    live = _session_rows(owner_engine, who.user_id, live=True)
    ended = _session_rows(owner_engine, who.user_id, live=False)
    assert _count(owner_engine, ended) == (1, 1)
    assert committed_services.queue is not None
    committed_services.queue.defer_purge()  # what the daily schedule defers
    deadline = time.monotonic() + 60
    while _count(owner_engine, ended) != (0, 0):
        assert time.monotonic() < deadline, "the purge task did not run"
        time.sleep(0.1)
    assert _count(owner_engine, live) == (1, 1)
