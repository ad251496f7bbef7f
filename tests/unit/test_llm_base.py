"""The provider port's data types and the FakeProvider used by orchestrator tests."""

from __future__ import annotations

import pytest

from jarvis.errors import ProviderRateLimitError
from jarvis.llm.base import (
    ChatMessage,
    FakeProvider,
    Finished,
    LLMProvider,
    ScriptedReply,
    TextDelta,
    ToolCallRequest,
    ToolCallsReady,
    Usage,
    UsageReport,
)


def test_tool_call_arguments_parse_or_keep_the_raw_text() -> None:
    assert ToolCallRequest.from_json("c", "t", '{"a": 1}').arguments == {"a": 1}
    assert ToolCallRequest.from_json("c", "t", "").arguments == {}
    bad = ToolCallRequest.from_json("c", "t", '{"a": ')
    assert (bad.arguments, bad.arguments_raw, bad.arguments_valid) == ({}, '{"a": ', False)
    not_object = ToolCallRequest.from_json("c", "t", "[1, 2]")
    assert not_object.arguments_raw == "[1, 2]"


def test_usage_buckets_add_up() -> None:
    total = Usage(10, 5, 100, 0) + Usage(1, 2, 3, 4)

    assert total == Usage(11, 7, 103, 4)
    assert total.prompt_tokens == 11 + 103 + 4
    assert total.total_tokens == 11 + 103 + 4 + 7


def test_fake_provider_streams_a_text_reply_in_port_order() -> None:
    fake = FakeProvider(lambda messages, tools: "Hello there, friend")

    events = list(fake.stream([ChatMessage("user", "hi")], [], model="m"))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello there, friend"
    assert isinstance(events[-2], UsageReport)
    assert events[-2].usage.output_tokens > 0
    assert events[-1] == Finished("stop")
    assert isinstance(fake, LLMProvider)
    assert fake.calls[0][2] == "m"


def test_fake_provider_scripted_tool_calls_then_text() -> None:
    call = ToolCallRequest("c1", "calculator", {"expression": "1+1"})
    fake = FakeProvider.scripted([ScriptedReply(tool_calls=[call], usage=Usage(7, 3)), "It is 2."])

    first = list(fake.stream([ChatMessage("user", "1+1?")], [], model="m"))
    second = list(fake.stream([ChatMessage("user", "1+1?")], [], model="m"))

    assert first == [ToolCallsReady([call]), UsageReport(Usage(7, 3)), Finished("tool_calls")]
    assert second[-1] == Finished("stop")
    with pytest.raises(AssertionError, match="no scripted reply left"):
        list(fake.stream([], [], model="m"))


def test_fake_provider_passes_raw_events_and_errors_through() -> None:
    raw = [TextDelta("x"), UsageReport(Usage()), Finished("length")]
    assert list(FakeProvider(lambda m, t: raw).stream([], [], model="m")) == raw

    def failing(messages, tools):
        raise ProviderRateLimitError("slow down", provider="fake")

    with pytest.raises(ProviderRateLimitError):
        list(FakeProvider(failing).stream([], [], model="m"))
