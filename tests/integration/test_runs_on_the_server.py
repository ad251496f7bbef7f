"""Runs belong to the server (committed data, real workers, LISTEN/NOTIFY): start returns at once,
the event log is replayed and followed by anyone, Stop works from another service instance,
budgets hold under concurrency, dead processes' runs are failed, deadlines and bad replies end
runs clearly."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from jarvis.bootstrap import Services
from jarvis.db.tables import AgentRun, Conversation, User
from jarvis.errors import LimitExceededError, RateLimitError
from jarvis.identity import Principal
from jarvis.llm.base import (
    ChatMessage,
    Finished,
    LLMProvider,
    StreamEvent,
    TextDelta,
    ToolDefinition,
    Usage,
    UsageReport,
)
from jarvis.services.chat import events as ev
from tests.factories import OPERATOR
from tests.factories import finished_run as finish_run
from tests.integration.chat_helpers import fake, make_chat


def committed_user(owner_engine: Engine, budget: Decimal | None = None) -> Principal:
    uid = uuid.uuid4()
    email = f"runs-{uid.hex[:10]}@example.com"
    with Session(owner_engine) as s:
        s.add(
            User(
                id=uid, email=email, password_hash="x", display_name="r", monthly_budget_usd=budget
            )
        )
        s.commit()
    return Principal(user_id=uid, email=email)


def words(n: int, pause: float):  # type: ignore[no-untyped-def]
    def slow(messages: list[ChatMessage], tools: list[ToolDefinition]) -> Iterator[StreamEvent]:
        for i in range(n):
            yield TextDelta(f"w{i} ")
            time.sleep(pause)
        yield UsageReport(Usage(10, n))
        yield Finished("stop")

    return slow


@pytest.fixture
def chat_factory(committed_services: Services) -> Iterator:  # type: ignore[type-arg]
    made: list[Services] = []

    def make(provider: LLMProvider, **settings: object) -> Services:
        chat = make_chat(committed_services, provider, beat_seconds=0.2, **settings)
        made.append(chat)
        return chat

    yield make
    for chat in made:
        chat.shutdown()


def test_start_returns_at_once_and_every_follower_sees_the_same_log(
    chat_factory, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    go = threading.Event()
    answer = words(20, 0.02)

    def after_start(
        messages: list[ChatMessage], tools: list[ToolDefinition]
    ) -> Iterator[StreamEvent]:
        go.wait(60)  # the answer begins only once start has returned (or after 60 s)
        yield from answer(messages, tools)

    chat = chat_factory(fake(after_start))
    user = committed_user(owner_engine)
    conv = chat.conversations.create(user, provider="offline", model="m")
    started = chat.runs.start(user, conv.id, "count slowly")
    # start did not wait for the answer: it has not begun (had start waited, it would have
    # run to its end after the minute)
    assert chat.runs.status(user, started.run_id) == "running"
    go.set()

    live = list(chat.runs.follow(user, started.run_id))
    replay = list(chat.runs.follow(user, started.run_id))  # a reload, another tab, later
    assert [f.seq for f in live] == list(range(1, len(live) + 1))  # gap-free
    assert [(f.seq, f.event) for f in replay] == [(f.seq, f.event) for f in live]
    assert isinstance(live[0].event, ev.RunStarted)
    assert isinstance(live[-1].event, ev.RunCompleted)
    text_ = "".join(f.event.text for f in live if isinstance(f.event, ev.TextDelta))
    assert text_ == live[-1].event.text + " "  # every delta is in the log (coalesced)
    deltas = sum(isinstance(f.event, ev.TextDelta) for f in live)
    assert 1 <= deltas < 20  # ... and coalesced: fewer events than tokens

    resumed = list(chat.runs.follow(user, started.run_id, after=2))  # Last-Event-ID: 2
    assert [f.seq for f in resumed] == [f.seq for f in live[2:]]

    other = committed_user(owner_engine)
    with pytest.raises(Exception, match="does not exist"):
        list(chat.runs.follow(other, started.run_id))  # row-level security


def test_a_follower_past_the_end_of_the_log_is_let_go_when_the_run_ends(
    chat_factory, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    """A client resuming with a ``Last-Event-ID`` beyond anything logged (its own bug, a
    stale counter) still sees its stream end once the run is over, instead of waiting for
    ever on a channel that will not speak again."""
    chat = chat_factory(fake(words(20, 0.02)))
    user = committed_user(owner_engine)
    conv = chat.conversations.create(user, provider="offline", model="m")
    started = chat.runs.start(user, conv.id, "count slowly")
    got: list[object] = []
    follower = threading.Thread(
        target=lambda: got.extend(chat.runs.follow(user, started.run_id, after=1_000_000)),
        daemon=True,
    )
    follower.start()
    follower.join(timeout=15)
    assert not follower.is_alive(), "the follower was never let go"
    assert got == []
    assert chat.runs.status(user, started.run_id) == "completed"


def test_stop_from_another_instance_stops_within_a_second_and_keeps_the_partial_answer(
    chat_factory, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    runner = chat_factory(fake(words(200, 0.05)))  # ~10 s of answer
    elsewhere = chat_factory(fake(lambda m, t: "unused"))  # another app instance
    user = committed_user(owner_engine)
    conv = runner.conversations.create(user, provider="openai", model="gpt-4o")
    started = runner.runs.start(user, conv.id, "talk a lot")
    seen: list[ev.Event] = []
    asked = 0.0
    for followed in elsewhere.runs.follow(user, started.run_id):
        seen.append(followed.event)
        if not asked and sum(isinstance(e, ev.TextDelta) for e in seen) == 3:
            asked = time.monotonic()
            assert elsewhere.runs.cancel(user, started.run_id)
    took = time.monotonic() - asked
    assert isinstance(seen[-1], ev.RunCancelled)
    assert took < 1.0, took
    [turn] = elsewhere.conversations.history(user, conv.id)
    assert turn.status == "cancelled" and turn.answer.startswith("w0 w1 w2")
    assert turn.total_tokens > 0 and turn.cost_usd and turn.cost_usd > 0  # estimated, priced
    assert not elsewhere.runs.cancel(user, started.run_id)  # nothing left to stop


def test_stop_ends_a_run_whose_model_has_gone_quiet_mid_answer(chat_factory, owner_engine) -> None:  # type: ignore[no-untyped-def]
    """A model that sends two words and then nothing for a minute: Stop still ends the run
    within a second, with the words it did send."""
    release = threading.Event()

    def quiet(_m: list[ChatMessage], _t: list[ToolDefinition]) -> Iterator[StreamEvent]:
        yield TextDelta("two ")
        yield TextDelta("words ")
        release.wait(60)
        yield TextDelta("too late")
        yield Finished("stop")

    runner = chat_factory(fake(quiet))
    user = committed_user(owner_engine)
    conv = runner.conversations.create(user, provider="openai", model="gpt-4o")
    started = runner.runs.start(user, conv.id, "say something")
    asked = 0.0
    seen: list[ev.Event] = []
    try:
        for followed in runner.runs.follow(user, started.run_id):
            seen.append(followed.event)
            text = "".join(e.text for e in seen if isinstance(e, ev.TextDelta))
            if not asked and text == "two words ":
                asked = time.monotonic()
                assert runner.runs.cancel(user, started.run_id)
        took = time.monotonic() - asked
    finally:
        release.set()
    assert isinstance(seen[-1], ev.RunCancelled)
    assert took < 1.5, took
    [turn] = runner.conversations.history(user, conv.id)
    assert turn.status == "cancelled" and turn.answer.strip() == "two words"


class BudgetAwareModel:
    """A model that honours ``max_tokens`` like a real one, wanting 50,000 output tokens."""

    def __init__(self) -> None:
        self.max_tokens: list[int | None] = []

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],  # noqa: ARG002 - the port's signature
        *,
        model: str,  # noqa: ARG002
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        self.max_tokens.append(max_tokens)
        time.sleep(0.3)  # every admitted run is still running when the others ask
        prompt = (sum(len(m.content) for m in messages) + 3) // 4
        out = min(50_000, max_tokens or 50_000)
        yield TextDelta("a long essay")
        yield UsageReport(Usage(input_tokens=prompt, output_tokens=out))
        yield Finished("length" if out < 50_000 else "stop")


def test_concurrent_turns_cannot_take_spend_past_the_budget(
    chat_factory, committed_services, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    model = BudgetAwareModel()
    chat = chat_factory(model, max_concurrent_runs=10, messages_per_minute=2)
    user = committed_user(owner_engine, budget=Decimal("1.00"))
    # 95 % of the month's budget is spent already ($0.95 of gpt-4o input).
    earlier = datetime.now(UTC) - timedelta(minutes=2)  # outside the per-minute window
    finish_run(committed_services, user, "openai", "gpt-4o", earlier, input_tokens=380_000)
    convs = [chat.conversations.create(user, provider="openai", model="gpt-4o") for _ in range(10)]
    barrier = threading.Barrier(10)
    outcomes: list[str] = []
    lock = threading.Lock()
    run_ids: list[uuid.UUID] = []

    def send(conv_id: uuid.UUID) -> None:
        barrier.wait()
        try:
            started = chat.runs.start(user, conv_id, "write me an essay")
        except LimitExceededError as exc:
            with lock:
                outcomes.append("budget" if "budget" in str(exc) else str(exc))
            return
        with lock:
            outcomes.append("started")
            run_ids.append(started.run_id)

    threads = [threading.Thread(target=send, args=(c.id,)) for c in convs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["budget"] * 9 + ["started"], outcomes
    for run_id in run_ids:
        list(chat.runs.follow(user, run_id))
    status = committed_services.usage.budget_status(user)
    assert status.spent_usd <= Decimal("1.00"), status.spent_usd
    assert model.max_tokens and model.max_tokens[0] < 50_000  # capped by the reservation

    # Refused turns did not use up the messages-per-minute allowance (2): one more may start.
    committed_services.usage.set_user_budget(OPERATOR, user.user_id, "100")
    again = chat.runs.start(user, convs[1].id, "one more")
    list(chat.runs.follow(user, again.run_id))
    with pytest.raises(RateLimitError):
        chat.runs.start(user, convs[2].id, "and another")


def test_the_runs_of_a_dead_process_are_failed_and_their_followers_told(
    chat_factory, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    chat = chat_factory(fake(lambda m, t: "ok"), max_concurrent_runs=1)
    user = committed_user(owner_engine)
    dead_worker, run_id = uuid.uuid4(), uuid.uuid4()
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    with Session(owner_engine) as s:  # a process that died mid-run, five minutes ago
        conv = Conversation(id=uuid.uuid4(), user_id=user.user_id, title="t")
        s.add(conv)
        s.flush()
        s.execute(
            text(
                "insert into run_workers (id, host, pid, started_at, heartbeat_at)"
                " values (:id, 'gone', 1, :t, :t)"
            ),
            {"id": dead_worker, "t": long_ago},
        )
        s.add(
            AgentRun(
                id=run_id,
                user_id=user.user_id,
                conversation_id=conv.id,
                provider="offline",
                model="m",
                status="running",
                started_at=long_ago,
                heartbeat_at=datetime.now(
                    UTC
                ),  # its own heartbeat looks fresh: the process's does not
                worker_id=dead_worker,
            )
        )
        s.commit()
    began = time.monotonic()
    events = [f.event for f in chat.runs.follow(user, run_id, timeout=10)]
    assert time.monotonic() - began < 5  # the supervisor sweeps every 0.2 s here (5 s live)
    assert isinstance(events[-1], ev.RunFailed) and "stopped" in events[-1].error
    assert chat.runs.status(user, run_id) == "failed"
    with owner_engine.connect() as c:  # the dead process is forgotten; its slot is free
        assert (
            c.scalar(text("select count(*) from run_workers where id = :i"), {"i": dead_worker})
            == 0
        )
    other = chat.conversations.create(user, provider="offline", model="m")
    assert [
        f.event.type for f in chat.runs.follow(user, chat.runs.start(user, other.id, "hi").run_id)
    ][-1] == "run_completed"


def test_a_run_past_its_deadline_is_failed_with_a_clear_message(chat_factory, owner_engine) -> None:  # type: ignore[no-untyped-def]
    chat = chat_factory(fake(words(100, 0.05)), run_deadline_seconds=1)
    user = committed_user(owner_engine)
    conv = chat.conversations.create(user, provider="offline", model="m")
    began = time.monotonic()
    started = chat.runs.start(user, conv.id, "go on forever")
    events = [f.event for f in chat.runs.follow(user, started.run_id)]
    assert time.monotonic() - began < 3
    assert isinstance(events[-1], ev.RunFailed) and "longer than the 1 s limit" in events[-1].error
    [turn] = chat.conversations.history(user, conv.id)
    assert turn.answer.startswith("w0")  # the partial answer is kept


def test_a_provider_reply_that_is_not_a_completion_fails_the_run(
    committed_services, owner_engine
) -> None:  # type: ignore[no-untyped-def]
    from tests.llm_wire_server import Reply, WireServer

    user = committed_user(owner_engine)
    with WireServer() as wire:
        wire.script(Reply.page(b"<html><body>It works!</body></html>"))
        committed_services.secrets.create(
            user, "openai_compatible", None, "sk-local", base_url=wire.url + "/v1"
        )
        conv = committed_services.conversations.create(
            user, provider="openai_compatible", model="llama3"
        )
        started = committed_services.runs.start(user, conv.id, "hello")
        events = [f.event for f in committed_services.runs.follow(user, started.run_id)]
    assert isinstance(events[-1], ev.RunFailed)
    assert "not with a chat completion" in events[-1].error
    [turn] = committed_services.conversations.history(user, conv.id)
    assert turn.status == "failed" and turn.answer == ""
