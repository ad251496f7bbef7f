"""Orchestrator behaviour that needs real commits and several connections: two runs racing
for the concurrency limit, and start-up recovery of runs a dead process left `running`."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from jarvis.bootstrap import Services, build_services
from jarvis.db.tables import AgentRun, Conversation, Message, User
from jarvis.errors import LimitExceededError
from jarvis.identity import Principal
from jarvis.llm.base import ChatMessage, ToolDefinition
from jarvis.services.chat.recovery import STALE_RUN_REASON
from jarvis.services.chat.workers import RunWorkers
from tests.integration.chat_helpers import fake, make_chat


def committed_user(owner_engine: Engine) -> Principal:
    uid = uuid.uuid4()
    email = f"chat-c-{uid.hex[:10]}@example.com"
    with Session(owner_engine) as s:
        s.add(User(id=uid, email=email, password_hash="x", display_name="c"))
        s.commit()
    return Principal(user_id=uid, email=email)


def test_two_racing_runs_respect_the_concurrent_run_limit(committed_services, owner_engine) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()

    def slow(messages: list[ChatMessage], tools: list[ToolDefinition]) -> str:
        release.wait(10)
        return "done"

    chat = make_chat(committed_services, fake(slow), max_concurrent_runs=1)
    try:
        _race(chat, owner_engine, release)
    finally:
        release.set()
        chat.shutdown()  # its workers and job worker must not outlive the test


def _race(chat: Services, owner_engine: Engine, release: threading.Event) -> None:
    user = committed_user(owner_engine)
    convs = [chat.conversations.create(user, provider="offline", model="m") for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    streams = []
    lock = threading.Lock()

    def attempt(text: str, conv_id: uuid.UUID) -> None:
        barrier.wait()
        try:
            stream = chat.runs.run(user, conv_id, text)
        except LimitExceededError:
            with lock:
                outcomes.append("refused")
            return
        with lock:
            outcomes.append("started")
            streams.append(stream)

    threads = [threading.Thread(target=attempt, args=(f"q{i}", convs[i].id)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == ["refused", "started"]
    with Session(owner_engine) as s:
        running = s.scalar(
            select(text("count(*)"))
            .select_from(AgentRun)
            .where(AgentRun.user_id == user.user_id, AgentRun.status == "running")
        )
    assert running == 1
    release.set()
    [stream] = streams
    assert [e.type for e in stream][-1] == "run_completed"
    # once it finished, the next run may start
    assert [e.type for e in chat.runs.run(user, convs[0].id, "again")][-1] == "run_completed"


def test_a_process_is_known_before_its_first_run_so_no_sweep_takes_it_for_dead(
    committed_services: Services, owner_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process's heartbeat row is written when it starts, not by the supervisor's first
    beat a moment later: a run admitted at once must not look like a dead process's to a
    concurrent admission or another process's sweep (two racing runs both got in that way).
    The supervisor is kept from ever beating here: the moment before its first beat, held."""
    monkeypatch.setattr(RunWorkers, "_start_supervisor", lambda self: None)
    release = threading.Event()

    def slow(messages: list[ChatMessage], tools: list[ToolDefinition]) -> str:
        release.wait(10)
        return "done"

    chat = make_chat(committed_services, fake(slow))
    try:
        with Session(owner_engine) as s:
            known = s.scalar(
                text("select count(*) from run_workers where id = :w"),
                {"w": chat.runs.worker_id},
            )
        assert known == 1
        user = committed_user(owner_engine)
        conv = chat.conversations.create(user, provider="offline", model="m")
        started = chat.runs.start(user, conv.id, "hello")
        with owner_engine.begin() as conn:  # another process's sweep, right now
            conn.execute(
                text("select jarvis_fail_stale_runs(now() - interval '30 seconds', 'dead')")
            )
        with Session(owner_engine) as s:
            status = s.scalar(select(AgentRun.status).where(AgentRun.id == started.run_id))
        assert status == "running"
    finally:
        release.set()
        chat.shutdown()


def test_start_up_fails_runs_a_dead_process_left_running(
    settings, app_engine, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    dead_user, live_user = committed_user(owner_engine), committed_user(owner_engine)
    now = datetime.now(UTC)
    ids = {}
    with Session(owner_engine) as s:
        for name, user, beat in (
            ("dead", dead_user, now - timedelta(minutes=30)),
            ("live", live_user, now),
        ):
            conv = Conversation(id=uuid.uuid4(), user_id=user.user_id, title=name)
            run = AgentRun(
                id=uuid.uuid4(),
                user_id=user.user_id,
                conversation_id=conv.id,
                provider="offline",
                model="m",
                status="running",
                started_at=beat,
                heartbeat_at=beat,
            )
            s.add(conv)
            s.flush()
            s.add(run)
            s.flush()
            s.add(
                Message(
                    id=uuid.uuid4(),
                    run_id=run.id,
                    conversation_id=conv.id,
                    user_id=user.user_id,
                    role="user",
                    content=f"{name} question",
                )
            )
            ids[name] = run.id
        s.commit()

    # the app role alone cannot even see another user's runs (forced RLS) ...
    with app_engine.connect() as conn:
        assert (
            conn.scalar(text("select count(*) from agent_runs where id = :id"), {"id": ids["dead"]})
            == 0
        )

    build_services(
        settings, engine=app_engine, background=False
    )  # ... but start-up recovery reaches them

    with Session(owner_engine) as s:
        dead = s.get(AgentRun, ids["dead"])
        live = s.get(AgentRun, ids["live"])
        assert dead is not None and live is not None
        assert (
            dead.status == "failed"
            and dead.error == STALE_RUN_REASON
            and dead.finished_at is not None
        )
        assert live.status == "running"  # a run of a live process (fresh heartbeat) is left alone
        kept = s.scalar(select(Message.content).where(Message.run_id == ids["dead"]))
        assert kept == "dead question"  # the user's question survived the crash
        live.status = "failed"
        live.error = "test cleanup"
        s.commit()


def test_the_app_role_may_only_execute_the_recovery_function(app_engine) -> None:  # type: ignore[no-untyped-def]
    with app_engine.connect() as conn:
        definer, owner_is_app = conn.execute(
            text(
                "select p.prosecdef, pg_get_userbyid(p.proowner) = current_user from pg_proc p "
                "where p.proname = 'jarvis_fail_stale_runs'"
            )
        ).one()
        can_exec = conn.scalar(
            text(
                "select has_function_privilege(current_user, 'jarvis_fail_stale_runs(timestamptz, text)', 'execute')"
            )
        )
        public_exec = conn.scalar(
            text(
                "select has_function_privilege('public', 'jarvis_fail_stale_runs(timestamptz, text)', 'execute')"
            )
        )
    assert definer is True and owner_is_app is False
    assert can_exec is True and public_exec is False


def test_the_heartbeat_keeps_a_silent_run_alive_and_fails_dead_ones(
    committed_services, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()

    def silent(messages: list[ChatMessage], tools: list[ToolDefinition]) -> str:
        release.wait(60)  # a model that says nothing for a long time (until released)
        return "finally"

    chat = make_chat(committed_services, fake(silent), beat_seconds=0.2)
    user, dead_user = committed_user(owner_engine), committed_user(owner_engine)
    old = datetime.now(UTC) - timedelta(minutes=10)
    with Session(owner_engine) as s:
        conv = Conversation(id=uuid.uuid4(), user_id=dead_user.user_id, title="dead")
        s.add(conv)
        s.flush()
        dead_id = uuid.uuid4()
        s.add(
            AgentRun(
                id=dead_id,
                user_id=dead_user.user_id,
                conversation_id=conv.id,
                provider="offline",
                model="m",
                status="running",
                started_at=old,
                heartbeat_at=old,
            )
        )
        s.commit()
    conv_live = chat.conversations.create(user, provider="offline", model="m")
    stream = chat.runs.run(user, conv_live.id, "are you there?")
    started = next(stream)
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.extend(e.type for e in stream))
    worker.start()

    def state(run_id: uuid.UUID) -> str:
        with Session(owner_engine) as s:
            run = s.get(AgentRun, run_id)
            assert run is not None
            return run.status

    def beat() -> datetime | None:
        with owner_engine.connect() as c:
            return c.scalar(
                text("select heartbeat_at from run_workers where id = :id"),
                {"id": chat.runs.worker_id},
            )

    first_beat = beat()
    deadline = datetime.now(UTC) + timedelta(seconds=8)
    while state(dead_id) == "running" or beat() in (None, first_beat):
        assert datetime.now(UTC) < deadline, "the process heartbeat did not act"
        release.wait(0.1)
    assert state(dead_id) == "failed"
    assert state(started.run_id) == "running"  # its process beats: a silent model is fine
    release.set()
    worker.join(10)
    assert result[-1] == "run_completed"
    chat.shutdown()


def test_recovered_runs_are_counted_in_the_usage_rollups(
    settings, app_engine, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    from jarvis.db.tables import ToolCall

    user = committed_user(owner_engine)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with Session(owner_engine) as s:
        conv = Conversation(id=uuid.uuid4(), user_id=user.user_id, title="crashed")
        s.add(conv)
        s.flush()
        run = AgentRun(
            id=uuid.uuid4(),
            user_id=user.user_id,
            conversation_id=conv.id,
            provider="openai",
            model="gpt-4o-mini",
            status="running",
            started_at=long_ago,
            heartbeat_at=long_ago,
            input_tokens=120,
            output_tokens=30,
        )
        s.add(run)
        s.flush()
        s.add(
            ToolCall(
                id=uuid.uuid4(),
                run_id=run.id,
                user_id=user.user_id,
                tool_id="calculator",
                status="ok",
                latency_ms=7,
                created_at=long_ago,
            )
        )
        s.commit()
        run_id = run.id

    build_services(settings, engine=app_engine, background=False)  # start-up recovery

    with owner_engine.connect() as conn:
        usage = conn.execute(
            text(
                "select runs, failed_runs, unpriced_runs, input_tokens, output_tokens, total_tokens, cost"
                " from usage_daily where user_id = :u"
            ),
            {"u": user.user_id},
        ).one()
        tools = conn.execute(
            text("select tool_id, calls, latency_ms_sum from tool_usage_daily where user_id = :u"),
            {"u": user.user_id},
        ).one()
        status, unpriced, total = conn.execute(
            text("select status, unpriced, total_tokens from agent_runs where id = :id"),
            {"id": run_id},
        ).one()
    assert tuple(usage) == (1, 1, 1, 120, 30, 150, 0)
    assert tuple(tools) == ("calculator", 1, 7)
    assert (status, unpriced, total) == ("failed", True, 150)
