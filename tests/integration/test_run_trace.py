"""A run's trace: every model call with its prompt and response, every tool call with its
arguments, result and duration, in order; the user's own runs only; secrets masked."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from jarvis.errors import NotFoundError
from jarvis.llm.base import ChatMessage, ScriptedReply, ToolCallRequest, ToolDefinition, Usage
from jarvis.services.chat.views import ModelCallStep, ToolCallStep
from tests import factories
from tests.integration.chat_helpers import fake, make_chat, make_user, run_all


def test_trace_shows_model_and_tool_calls_in_order_with_tokens(services) -> None:  # type: ignore[no-untyped-def]
    def model(messages: list[ChatMessage], tools: list[ToolDefinition]) -> ScriptedReply:
        if not any(m.role == "tool" for m in messages):
            return ScriptedReply(
                text="Let me compute.",
                tool_calls=[ToolCallRequest("c1", "calculator", {"expression": "6*7"})],
                usage=Usage(120, 15),
            )
        return ScriptedReply(text="It is **42**.", usage=Usage(160, 8))

    chat = make_chat(services, fake(model))
    user = make_user(services)
    conv = chat.conversations.create(user, provider="openai", model="gpt-4o")
    events = run_all(chat, user, conv.id, "What is 6*7? My key is sk-abcdefghijklmnop1234")

    trace = chat.traces.trace(user, events[0].run_id)

    assert trace.status == "completed" and trace.model == "gpt-4o" and trace.detailed
    assert [type(s).__name__ for s in trace.steps] == [
        "ModelCallStep",
        "ToolCallStep",
        "ModelCallStep",
    ]
    first, tool, second = trace.steps
    assert isinstance(first, ModelCallStep) and isinstance(second, ModelCallStep)
    assert isinstance(tool, ToolCallStep)
    # The first call was sent the system prompt and the question (the key masked).
    assert [m.role for m in first.prompt] == ["system", "user"]
    assert first.prompt[1].content == "What is 6*7? My key is [REDACTED_KEY]"
    assert first.response == "Let me compute."
    assert first.tool_calls == ['calculator({"expression": "6*7"})']
    assert (first.input_tokens, first.output_tokens) == (120, 15)
    assert first.duration_ms >= 0 and first.status == "ok"
    # The tool call: arguments, result, status, duration.
    assert tool.tool_id == "calculator" and tool.status == "ok"
    assert tool.arguments == {"expression": "6*7"}
    assert tool.result == {"expression": "6*7", "result": 42}
    assert tool.duration_ms is not None
    # The second call saw everything before it, the tool's result last.
    assert [m.role for m in second.prompt] == ["system", "user", "assistant", "tool"]
    assert json.loads(second.prompt[3].content)["result"] == 42
    assert second.prompt[2].tool_calls == ['calculator({"expression": "6*7"})']
    assert second.response == "It is **42**."
    # The header adds up the calls.
    assert (trace.input_tokens, trace.output_tokens) == (280, 23)
    assert trace.total_tokens == 303
    assert trace.cost_usd is not None and trace.cost_usd > 0 and not trace.unpriced
    assert trace.latency_ms is not None and trace.latency_ms >= 0


def test_another_users_run_is_not_found_even_for_an_admin(services) -> None:  # type: ignore[no-untyped-def]
    chat = make_chat(services, fake(lambda m, t: "hello"))
    user = make_user(services)
    other = make_user(services)
    admin = make_user(services, role="admin")
    conv = chat.conversations.create(user, provider="offline", model="offline-deterministic")
    run_id = run_all(chat, user, conv.id, "hi")[0].run_id
    assert chat.traces.trace(user, run_id).answer == "hello"
    for stranger in (other, admin):
        with pytest.raises(NotFoundError, match="not yours"):
            chat.traces.trace(stranger, run_id)


def test_a_run_without_logged_model_calls_shows_its_tool_calls(services) -> None:  # type: ignore[no-untyped-def]
    user = make_user(services)
    start = services.clock.now() - timedelta(hours=1)
    run_id = factories.finished_run(
        services,
        user,
        "openai",
        "gpt-4o",
        start,
        input_tokens=1000,
        output_tokens=10,
        tools=(("memory_search", "ok", 30), ("web_search", "error", 800)),
    )
    trace = services.traces.trace(user, run_id)
    assert not trace.detailed
    assert [(s.tool_id, s.status, s.duration_ms) for s in trace.tool_calls] == [
        ("memory_search", "ok", 30),
        ("web_search", "error", 800),
    ]
    assert trace.latency_ms == 60_000  # the factory's runs last a minute
