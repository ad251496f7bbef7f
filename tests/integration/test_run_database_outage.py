"""A database outage in the middle of an answer: once PostgreSQL is back the run ends (failed,
with a message that says why), nothing is left running, the user's slot is free, and the app
recovers by itself (pool and listener)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jarvis.bootstrap import build_services
from jarvis.db.embedded import EmbeddedPostgres
from jarvis.db.migrate import upgrade
from jarvis.llm.base import (
    ChatMessage,
    FakeProvider,
    Finished,
    ScriptedReply,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolCallsReady,
    ToolDefinition,
    Usage,
    UsageReport,
)
from jarvis.services.chat import events as ev
from tests.conftest import make_settings
from tests.integration.chat_helpers import StaticProviders

pytestmark = pytest.mark.slow


def test_a_run_caught_by_a_database_outage_ends_once_the_database_is_back(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "db")  # stop() keeps the data: it comes back
    settings = make_settings(server.start(), tmp_path / "data")
    upgrade(settings)
    outage = threading.Event()

    def model(
        messages: list[ChatMessage], _tools: list[ToolDefinition]
    ) -> ScriptedReply | Iterator[StreamEvent]:
        if any(m.role == "tool" for m in messages):
            return ScriptedReply(text="the answer is 4")
        return _first_turn(outage)

    services = build_services(
        settings, providers=StaticProviders(FakeProvider(model)), run_beat_seconds=0.2
    )
    try:
        user = services.accounts.register("outage@example.com", "a long enough password", "O")
        conv = services.conversations.create(user, provider="offline", model="m")
        started = services.runs.start(user, conv.id, "what is 2 + 2, slowly")
        outage.wait(10)  # the model is streaming its first words
        server.stop()  # PostgreSQL goes away mid-answer ...
        time.sleep(1.5)
        server.start()  # ... and comes back
        events = [f.event for f in services.runs.follow(user, started.run_id, timeout=60)]
        assert isinstance(events[-1], ev.RunFailed), events[-1]
        assert "database is unavailable" in events[-1].error
        assert services.runs.status(user, started.run_id) == "failed"
        # Nothing hangs: the slot is free and a new answer runs normally.
        again = services.runs.start(user, conv.id, "hello again")
        assert isinstance(
            [f.event for f in services.runs.follow(user, again.run_id, timeout=30)][-1],
            ev.RunCompleted,
        )
    finally:
        services.shutdown()
        services.engine.dispose()
        cleanup = EmbeddedPostgres(tmp_path / "db", delete_on_stop=True)
        cleanup.start()
        cleanup.stop()


def _first_turn(outage: threading.Event) -> Iterator[StreamEvent]:
    yield TextDelta("Let me ")
    time.sleep(0.3)
    yield TextDelta("work it out. ")
    outage.set()
    time.sleep(1.0)  # the database goes away now; the tool call (a write) comes next
    yield ToolCallsReady([ToolCallRequest("c1", "calculator", {"expression": "2 + 2"})])
    yield UsageReport(Usage(20, 10))
    yield Finished("tool_calls")
