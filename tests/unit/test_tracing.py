"""Spans of LLM calls (captured in memory): attributes present, never message text or keys."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from jarvis import tracing
from jarvis.config import Settings
from jarvis.errors import ConfigError, ProviderServerError
from jarvis.llm.anthropic_provider import AnthropicProvider
from jarvis.llm.base import ChatMessage, ToolDefinition
from jarvis.llm.openai_provider import OpenAIProvider
from tests.llm_wire_server import (
    Reply,
    WireServer,
    anthropic_tool_stream,
    fast_retry,
    openai_text_stream,
    openai_usage,
)

KEY = "sk-proj-TRACEKEYabcdefghijkl123456"
SECRET_TEXT = "my passport number is X1234567 and I live at 12 Baker Street"
TOOL = ToolDefinition("memory_search", "Search memories", {"type": "object", "properties": {}})


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, synchronous=True)
    yield exporter
    tracing.reset_tracing()


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as wire:
        yield wire


def dump(span) -> str:
    """Everything a span would export, as text."""
    return json.loads(span.to_json()).__repr__()


def test_llm_call_span_has_provider_model_tokens_and_status(spans, server) -> None:
    server.script(
        Reply.sse(openai_text_stream([SECRET_TEXT], usage=openai_usage(40, 12, cached=10)))
    )
    policy, _ = fast_retry()
    provider = OpenAIProvider(KEY, base_url=server.url + "/v1", retry=policy)

    list(provider.stream([ChatMessage("user", SECRET_TEXT)], [TOOL], model="gpt-4o-mini"))

    (span,) = spans.get_finished_spans()
    assert span.name == "llm.call"
    attrs = dict(span.attributes)
    assert attrs["llm.provider"] == "openai"
    assert attrs["llm.model"] == "gpt-4o-mini"
    assert attrs["llm.input_tokens"] == 30
    assert attrs["llm.cache_read_tokens"] == 10
    assert attrs["llm.output_tokens"] == 12
    assert attrs["llm.status"] == "ok"
    assert attrs["llm.stop_reason"] == "stop"
    assert attrs["llm.attempts"] == 1
    assert span.status.status_code is StatusCode.OK
    exported = dump(span)
    assert "passport" not in exported and "Baker" not in exported
    assert KEY not in exported


def test_failed_call_span_records_retries_and_error_class_only(spans, server) -> None:
    server.script(Reply.error(500, f"crash while reading {SECRET_TEXT} with {KEY}"))
    policy, _ = fast_retry(attempts=3)
    provider = AnthropicProvider(KEY, base_url=server.url, retry=policy)

    with pytest.raises(ProviderServerError):
        list(provider.stream([ChatMessage("user", SECRET_TEXT)], [], model="claude-haiku-4-5"))

    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["llm.status"] == "error"
    assert span.attributes["llm.attempts"] == 3
    assert span.attributes["error.type"] == "ProviderServerError"
    assert [e.name for e in span.events] == ["retry", "retry"]
    exported = dump(span)
    assert "passport" not in exported
    assert KEY not in exported


def test_tool_call_turn_counts_calls(spans, server) -> None:
    server.script(
        Reply.sse(anthropic_tool_stream([("toolu_1", "memory_search", ['{"query": "passport"}'])]))
    )
    policy, _ = fast_retry()
    provider = AnthropicProvider(KEY, base_url=server.url, retry=policy)

    list(
        provider.stream([ChatMessage("user", "find my passport")], [TOOL], model="claude-haiku-4-5")
    )

    (span,) = spans.get_finished_spans()
    assert span.attributes["llm.tool_calls"] == 1
    assert span.attributes["llm.stop_reason"] == "tool_calls"
    assert "passport" not in dump(span)  # tool arguments are not recorded either


def test_cancelled_stream_ends_its_span(spans, server) -> None:
    server.script(Reply.sse(openai_text_stream(["a", "b"], usage=openai_usage(1, 2))))
    policy, _ = fast_retry()
    stream = OpenAIProvider(KEY, base_url=server.url + "/v1", retry=policy).stream(
        [ChatMessage("user", "hi")], [], model="gpt-4o-mini"
    )
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]

    (span,) = spans.get_finished_spans()
    assert span.attributes["llm.status"] == "cancelled"


def test_processor_drops_text_keys_and_redacts_values(spans) -> None:
    with tracing.span(
        "tool.call", {"tool.id": "memory_store", "tool.arguments": SECRET_TEXT}
    ) as current:
        current.set_attribute("llm.prompt", SECRET_TEXT)
        current.set_attribute("message.content", SECRET_TEXT)
        current.set_attribute("user.api_key", KEY)
        current.set_attribute("note", f"used key {KEY} for alice@example.com")
        current.add_event("step", {"result": SECRET_TEXT, "step": 2})

    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes)
    assert attrs["tool.id"] == "memory_store"
    assert "tool.arguments" not in attrs and "llm.prompt" not in attrs
    assert "message.content" not in attrs and "user.api_key" not in attrs
    assert KEY not in attrs["note"] and "alice@example.com" not in attrs["note"]
    assert dict(span.events[0].attributes) == {"step": 2}


def test_span_helper_marks_errors_with_the_class_name_only(spans) -> None:
    with pytest.raises(ValueError), tracing.span("run"):
        raise ValueError(f"bad input: {SECRET_TEXT}")

    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    assert "passport" not in dump(span)


def test_safe_attributes_rules() -> None:
    assert tracing.is_allowed_key("llm.input_tokens")
    assert tracing.is_allowed_key("run.cost_usd")
    assert not tracing.is_allowed_key("llm.input")
    assert not tracing.is_allowed_key("gen_ai.prompt")
    assert not tracing.is_allowed_key("secret_value")
    assert tracing.safe_attributes({"a": None, "b": 1, "c": "x" * 2000})["c"].endswith("…")


def test_exporter_is_chosen_by_settings() -> None:
    assert tracing.make_exporter("none") is None
    assert isinstance(tracing.make_exporter("console"), ConsoleSpanExporter)
    otlp = tracing.make_exporter("otlp")
    assert type(otlp).__name__ == "OTLPSpanExporter"
    otlp.shutdown()
    with pytest.raises(ConfigError):
        tracing.make_exporter("zipkin")
    assert tracing.configure_tracing(Settings(otel_exporter="none")) is None
