"""The offline model drives the tool loop deterministically, with offered tools only."""

from __future__ import annotations

import json

import pytest

from jarvis.llm.base import (
    ChatMessage,
    Finished,
    LLMProvider,
    TextDelta,
    ToolCallRequest,
    ToolCallsReady,
    ToolDefinition,
    UsageReport,
)
from jarvis.llm.offline import OFFLINE_LABEL, OfflineProvider
from jarvis.tools.specs import BUILTIN_TOOLS

ALL_TOOLS = [ToolDefinition(t.id, t.description, t.parameters) for t in BUILTIN_TOOLS]


def run(messages: list[ChatMessage], tools: list[ToolDefinition] = ALL_TOOLS) -> list:
    return list(OfflineProvider().stream(messages, tools, model="offline-deterministic"))


def calls_for(text: str, tools: list[ToolDefinition] = ALL_TOOLS) -> list[ToolCallRequest]:
    events = run([ChatMessage("system", "You are Jarvis."), ChatMessage("user", text)], tools)
    ready = [e for e in events if isinstance(e, ToolCallsReady)]
    return ready[0].calls if ready else []


def text_of(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "Remember that my cat is called Tom.",
            [("memory_store", {"content": "my cat is called Tom"})],
        ),
        ("please remember: I like green tea", [("memory_store", {"content": "I like green tea"})]),
        (
            "What do you know about Alice?",
            [("memory_search", {"query": "Alice"}), ("kg_lookup", {"query": "Alice"})],
        ),
        (
            "who is Bob Smith",
            [("memory_search", {"query": "Bob Smith"}), ("kg_lookup", {"query": "Bob Smith"})],
        ),
        ("what is 2*(3+4)?", [("calculator", {"expression": "2*(3+4)"})]),
        ("calculate 3 plus 4 times 2", [("calculator", {"expression": "3 + 4 * 2"})]),
        ("What time is it?", [("current_time", {})]),
        ("what's the date today", [("current_time", {})]),
        ("How much have I spent this month?", [("usage_report", {})]),
        ("search the web for pgvector 0.8", [("web_search", {"query": "pgvector 0.8"})]),
    ],
)
def test_each_intent_calls_its_tool(prompt: str, expected: list) -> None:
    calls = calls_for(prompt)

    assert [(c.name, c.arguments) for c in calls] == expected
    assert len({c.id for c in calls}) == len(calls)


def test_tool_turn_ends_with_tool_calls_and_plausible_usage() -> None:
    events = run([ChatMessage("user", "what is 6*7")])

    usage = next(e for e in events if isinstance(e, UsageReport)).usage
    assert usage.input_tokens > 100  # the tool definitions count
    assert usage.output_tokens > 0
    assert events[-1] == Finished("tool_calls")


def test_only_offered_tools_are_called() -> None:
    only_memory = [t for t in ALL_TOOLS if t.name == "memory_search"]

    calls = calls_for("What do you know about Alice?", only_memory)
    assert [c.name for c in calls] == ["memory_search"]

    events = run([ChatMessage("user", "what is 2+2")], only_memory)
    assert not any(isinstance(e, ToolCallsReady) for e in events)
    assert "`calculator`" in text_of(events)
    assert "not enabled" in text_of(events)
    assert events[-1] == Finished("stop")


def test_no_intent_gets_a_canned_offline_answer() -> None:
    events = run([ChatMessage("user", "Tell me a joke")])

    text = text_of(events)
    assert "offline model" in text
    assert "What is 2*(3+4)?" in text  # suggests what works
    assert not any(isinstance(e, ToolCallsReady) for e in events)
    assert next(e for e in events if isinstance(e, UsageReport)).usage.output_tokens > 10


def _turn(question: str, calls: list[ToolCallRequest], results: list[dict]) -> list[ChatMessage]:
    return [
        ChatMessage("user", question),
        ChatMessage("assistant", "", tool_calls=calls),
        *[
            ChatMessage("tool", json.dumps(result), tool_call_id=call.id)
            for call, result in zip(calls, results, strict=True)
        ],
    ]


def test_final_answer_summarises_calculator_result() -> None:
    call = ToolCallRequest("offline_1", "calculator", {"expression": "2*(3+4)"})
    events = run(
        _turn("what is 2*(3+4)", [call], [{"status": "ok", "expression": "2*(3+4)", "result": 14}])
    )

    assert text_of(events) == "2*(3+4) = **14**"
    assert events[-1] == Finished("stop")


def test_final_answer_summarises_memories_and_graph() -> None:
    calls = [
        ToolCallRequest("offline_1", "memory_search", {"query": "Alice"}),
        ToolCallRequest("offline_2", "kg_lookup", {"query": "Alice"}),
    ]
    results = [
        {
            "status": "ok",
            "query": "Alice",
            "results": [{"content": "Alice prefers tea", "score": 0.9}],
        },
        {
            "status": "ok",
            "entities": [
                {
                    "name": "Alice",
                    "type": "person",
                    "facts": [{"subject": "Alice", "relation": "works_at", "object": "Acme"}],
                }
            ],
        },
    ]

    text = text_of(run(_turn("What do you know about Alice?", calls, results)))

    assert "Alice prefers tea" in text
    assert "Alice (person)" in text
    assert "works_at Acme" in text


def test_final_answer_for_stored_memory_time_and_empty_search() -> None:
    store = ToolCallRequest("offline_1", "memory_store", {"content": "my cat is Tom"})
    assert "remember that my cat is Tom" in text_of(
        run(_turn("remember that my cat is Tom", [store], [{"status": "ok", "stored": True}]))
    )
    clock = ToolCallRequest("offline_1", "current_time", {})
    assert "2026-11-26T01:00:00+00:00" in text_of(
        run(
            _turn(
                "what time is it", [clock], [{"status": "ok", "iso": "2026-11-26T01:00:00+00:00"}]
            )
        )
    )
    search = ToolCallRequest("offline_1", "memory_search", {"query": "x"})
    assert "nothing found" in text_of(
        run(_turn("who is x", [search], [{"status": "ok", "results": []}]))
    )


def test_denied_or_failed_tool_is_explained_not_retried() -> None:
    call = ToolCallRequest("offline_1", "current_time", {})
    events = run(
        _turn(
            "what time is it",
            [call],
            [{"status": "denied", "error": "You have not allowed this tool."}],
        )
    )

    assert "could not use `current_time`" in text_of(events)
    assert "not allowed" in text_of(events)
    assert not any(isinstance(e, ToolCallsReady) for e in events)


def test_deterministic_and_labelled() -> None:
    messages = [ChatMessage("user", "What do you know about Alice?")]

    assert run(messages) == run(messages)
    assert OfflineProvider().name == "offline"
    assert OFFLINE_LABEL == "offline (deterministic, no LLM)"
    assert isinstance(OfflineProvider(), LLMProvider)


def test_spending_is_answered_in_a_sentence() -> None:
    """Not ``month_to_date_usd: 0``: the numbers stay in the expandable tool step."""
    report = ToolCallRequest("offline_1", "usage_report", {})
    answer = text_of(
        run(
            _turn(
                "how much have I spent this month",
                [report],
                [
                    {
                        "status": "ok",
                        "runs": 0,
                        "month_to_date_usd": "0",
                        "projected_month_usd": "0",
                        "budget": {"budget_usd": "20", "spent_usd": "0", "fraction": 0.0},
                    }
                ],
            )
        )
    )
    assert answer == "You have spent $0.00 this month, of your $20.00 budget."
    busy = text_of(
        run(
            _turn(
                "how much have I spent",
                [report],
                [
                    {
                        "month_to_date_usd": "1234.5",
                        "projected_month_usd": "2500.004",
                        "budget": {"budget_usd": "3000"},
                    }
                ],
            )
        )
    )
    assert busy == (
        "You have spent $1,234.50 this month, of your $3,000.00 budget. "
        "At this pace the month will cost about $2,500.00."
    )
    assert "month_to_date_usd" not in answer + busy
