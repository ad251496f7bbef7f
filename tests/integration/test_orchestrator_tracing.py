"""Spans of an agent run: one per run and one per tool call, with safe attributes only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jarvis.llm.base import ChatMessage, ScriptedReply, ToolCallRequest, ToolDefinition
from jarvis.tracing import configure_tracing, reset_tracing
from tests.integration.chat_helpers import fake, make_chat, make_user, run_all


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing(exporter=exporter, synchronous=True, install_global=False)
    yield exporter
    reset_tracing()


def test_run_and_tool_spans(services, spans: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    secret_text = "my password is hunter2hunter2"

    def model(messages: list[ChatMessage], tools: list[ToolDefinition]) -> ScriptedReply:
        if messages[-1].role == "user":
            return ScriptedReply(
                tool_calls=[
                    ToolCallRequest("a", "calculator", {"expression": "2+2"}),
                    ToolCallRequest("b", "calculator", {"wrong": 1}),
                ]
            )
        return ScriptedReply(text="4, " + secret_text)

    user = make_user(services)
    chat = make_chat(services, fake(model))
    conv = chat.conversations.create(user, provider="openai", model="gpt-4o-mini")
    events = run_all(chat, user, conv.id, secret_text)

    finished = {s.name: s for s in spans.get_finished_spans() if s.name == "agent.run"}
    run_span = finished["agent.run"]
    attrs = dict(run_span.attributes or {})
    assert attrs["run.id"] == str(events[0].run_id)
    assert attrs["llm.model"] == "gpt-4o-mini" and attrs["run.status"] == "completed"
    assert attrs["run.total_tokens"] > 0 and attrs["run.cost_usd"] > 0 and attrs["run.steps"] == 2
    tools = [s for s in spans.get_finished_spans() if s.name == "agent.tool_call"]
    assert [(t.attributes or {}).get("tool.status") for t in tools] == ["ok", "error"]
    assert all((t.attributes or {}).get("tool.id") == "calculator" for t in tools)
    assert all(t.parent is not None and t.parent.span_id == run_span.context.span_id for t in tools)
    everything = repr([dict(s.attributes or {}) for s in spans.get_finished_spans()])
    assert "hunter2" not in everything and "2+2" not in everything
