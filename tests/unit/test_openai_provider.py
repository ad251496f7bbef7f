"""OpenAIProvider with the real ``openai`` SDK against a local server replaying the
Chat Completions streaming wire format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jarvis.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderBadResponseError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from jarvis.llm.base import (
    ChatMessage,
    Finished,
    TextDelta,
    ToolCallRequest,
    ToolCallsReady,
    ToolDefinition,
    Usage,
    UsageReport,
)
from jarvis.llm.openai_provider import OpenAIProvider
from tests.llm_wire_server import (
    Reply,
    WireServer,
    fast_retry,
    openai_text_stream,
    openai_tool_stream,
    openai_usage,
)

KEY = "sk-proj-TESTKEYabcdefghijklmnop1234"
CALC = ToolDefinition(
    "calculator",
    "Evaluate arithmetic",
    {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as wire:
        yield wire


def provider(
    server: WireServer, attempts: int = 3, **kw: object
) -> tuple[OpenAIProvider, list[float]]:
    policy, delays = fast_retry(attempts)
    return OpenAIProvider(KEY, base_url=server.url + "/v1", retry=policy, **kw), delays  # type: ignore[arg-type]


def ask(p: OpenAIProvider, text: str = "hi", tools: list[ToolDefinition] | None = None) -> list:
    return list(p.stream([ChatMessage("user", text)], tools or [], model="gpt-4o-mini"))


def test_text_streams_in_chunks_with_usage_and_cached_tokens(server: WireServer) -> None:
    server.script(
        Reply.sse(
            openai_text_stream(["Hel", "lo ", "world"], usage=openai_usage(120, 7, cached=100))
        )
    )
    p, _ = provider(server)

    events = ask(p)

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo ", "world"]
    assert events[-2] == UsageReport(Usage(input_tokens=20, output_tokens=7, cache_read_tokens=100))
    assert events[-1] == Finished("stop")


def test_request_carries_tools_stream_options_and_the_key(server: WireServer) -> None:
    server.script(Reply.sse(openai_text_stream(["ok"], usage=openai_usage(1, 1))))
    p, _ = provider(server)
    history = [
        ChatMessage("system", "be brief"),
        ChatMessage("user", "2+2?"),
        ChatMessage(
            "assistant",
            "",
            tool_calls=[ToolCallRequest("call_1", "calculator", {"expression": "2+2"})],
        ),
        ChatMessage("tool", '{"result": 4}', tool_call_id="call_1"),
    ]

    list(p.stream(history, [CALC], model="gpt-4o-mini", max_tokens=50))

    request = server.requests[-1]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 50
    assert body["tools"][0]["function"]["name"] == "calculator"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["expression"]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["messages"][2]["tool_calls"][0]["function"] == {
        "name": "calculator",
        "arguments": '{"expression": "2+2"}',
    }
    assert body["messages"][3] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"result": 4}',
    }


def test_tool_call_fragments_are_assembled_per_call(server: WireServer) -> None:
    server.script(
        Reply.sse(
            openai_tool_stream(
                [
                    ("call_a", "calculator", ['{"expre', 'ssion": "2*', '(3+4)"}']),
                    ("call_b", "current_time", ["{", "}"]),
                ],
                usage=openai_usage(50, 12),
            )
        )
    )
    p, _ = provider(server)

    events = ask(p, "what is 2*(3+4) and the time?", [CALC])

    ready = [e for e in events if isinstance(e, ToolCallsReady)]
    assert len(ready) == 1
    assert ready[0].calls == [
        ToolCallRequest("call_a", "calculator", {"expression": "2*(3+4)"}),
        ToolCallRequest("call_b", "current_time", {}),
    ]
    assert events[-2] == UsageReport(Usage(input_tokens=50, output_tokens=12))
    assert events[-1] == Finished("tool_calls")


def test_invalid_tool_arguments_are_kept_raw(server: WireServer) -> None:
    server.script(Reply.sse(openai_tool_stream([("call_x", "calculator", ['{"expression": 2+'])])))
    p, _ = provider(server)

    calls = next(e for e in ask(p, tools=[CALC]) if isinstance(e, ToolCallsReady)).calls

    assert calls[0].arguments == {}
    assert calls[0].arguments_raw == '{"expression": 2+'
    assert not calls[0].arguments_valid


def test_missing_usage_chunk_reports_zero_usage(server: WireServer) -> None:
    server.script(Reply.sse(openai_text_stream(["hi"], usage=None, finish="length")))
    p, _ = provider(server)

    events = ask(p)

    assert events[-2] == UsageReport(Usage())
    assert events[-1] == Finished("length")


def test_rate_limit_then_success_retries_with_backoff(server: WireServer) -> None:
    server.script(
        Reply.error(429, "slow down"),
        Reply.error(429, "slow down"),
        Reply.sse(openai_text_stream(["fine"], usage=openai_usage(3, 1))),
    )
    p, delays = provider(server)

    events = ask(p)

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["fine"]
    assert len(server.requests) == 3
    assert len(delays) == 2
    assert 0.1 <= delays[0] <= 0.2  # base 0.2 with jitter in [0.5, 1.0]
    assert 0.2 <= delays[1] <= 0.4  # doubled


def test_retry_after_header_is_honoured_up_to_the_cap(server: WireServer) -> None:
    server.script(
        Reply.error(429, headers={"retry-after": "1.5"}),
        Reply.sse(openai_text_stream(["ok"])),
    )
    p, delays = provider(server)

    ask(p)

    assert delays == [1.5]


def test_server_error_until_give_up(server: WireServer) -> None:
    server.script(Reply.error(500, "internal"))
    p, delays = provider(server, attempts=3)

    with pytest.raises(ProviderServerError) as info:
        ask(p)

    assert len(server.requests) == 3
    assert len(delays) == 2
    assert "gave up after 3 attempts" in str(info.value)
    assert "HTTP 500" in str(info.value)
    assert info.value.provider == "openai"


def test_rate_limit_until_give_up_is_a_rate_limit_error(server: WireServer) -> None:
    server.script(Reply.error(429))
    p, _ = provider(server, attempts=2)

    with pytest.raises(ProviderRateLimitError, match="rate limiting"):
        ask(p)
    assert len(server.requests) == 2


def test_timeout_is_retried_then_reported(server: WireServer) -> None:
    server.script(Reply(delay=3.0, events=openai_text_stream(["late"])))
    p, delays = provider(server, attempts=2, timeout=0.3)

    with pytest.raises(ProviderTimeoutError, match="did not answer in time"):
        ask(p)
    assert len(server.requests) == 2
    assert len(delays) == 1


def test_bad_key_is_an_auth_error_without_the_key(server: WireServer) -> None:
    server.script(Reply.error(401, f"Incorrect API key provided: {KEY}"))
    p, delays = provider(server)

    with pytest.raises(ProviderAuthError) as info:
        ask(p)

    assert delays == []  # not retried
    assert len(server.requests) == 1
    assert KEY not in str(info.value)
    assert "Secrets" in str(info.value)


def test_bad_request_keeps_the_provider_explanation_redacted(server: WireServer) -> None:
    server.script(Reply.error(404, f"The model `gpt-nope` does not exist (key {KEY})"))
    p, _ = provider(server)

    with pytest.raises(ProviderBadRequestError) as info:
        ask(p)

    assert "gpt-nope" in str(info.value)
    assert KEY not in str(info.value)
    assert len(server.requests) == 1


def test_error_after_streamed_text_is_not_retried(server: WireServer) -> None:
    events = openai_text_stream(["partial"])[:2] + [(None, {"error": {"message": "overloaded"}})]
    server.script(Reply.sse(events))
    p, delays = provider(server)
    seen: list = []

    with pytest.raises(ProviderServerError, match="overloaded"):
        for event in p.stream([ChatMessage("user", "hi")], [], model="gpt-4o-mini"):
            seen.append(event)

    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["partial"]
    assert delays == []
    assert len(server.requests) == 1


def test_closing_the_stream_early_stops_reading(server: WireServer) -> None:
    server.script(Reply.sse(openai_text_stream(["a", "b", "c"], usage=openai_usage(1, 3))))
    p, _ = provider(server)

    stream = p.stream([ChatMessage("user", "hi")], [], model="gpt-4o-mini")
    first = next(iter(stream))
    stream.close()  # type: ignore[attr-defined]

    assert first == TextDelta("a")


def test_openai_compatible_server_without_key(server: WireServer) -> None:
    server.script(Reply.sse(openai_text_stream(["local"], usage=openai_usage(4, 1))))
    policy, _ = fast_retry()
    p = OpenAIProvider(None, name="openai_compatible", base_url=server.url + "/v1", retry=policy)

    events = list(p.stream([ChatMessage("user", "hi")], [], model="llama3.1", max_tokens=10))

    assert TextDelta("local") in events
    assert p.name == "openai_compatible"
    assert server.requests[-1].body["max_tokens"] == 10  # compatible servers know max_tokens
    assert "max_completion_tokens" not in server.requests[-1].body


def test_repr_never_shows_the_key(server: WireServer) -> None:
    p, _ = provider(server)

    assert KEY not in repr(p)
    assert "openai" in repr(p)


def test_compatible_server_refusing_stream_options_is_asked_again_without(
    server: WireServer,
) -> None:
    server.script(
        Reply.error(400, "Unrecognized request argument supplied: stream_options"),
        Reply.sse(openai_text_stream(["no usage here"], usage=None)),
    )
    policy, delays = fast_retry()
    p = OpenAIProvider("local", name="openai_compatible", base_url=server.url + "/v1", retry=policy)

    events = ask(p)

    assert TextDelta("no usage here") in events
    assert events[-2] == UsageReport(Usage())
    assert "stream_options" in server.requests[0].body
    assert "stream_options" not in server.requests[1].body
    assert delays == []  # not a retry of a transient error


def test_openai_itself_refusing_stream_options_is_a_bad_request(server: WireServer) -> None:
    server.script(Reply.error(400, "Unrecognized request argument supplied: stream_options"))
    p, _ = provider(server)

    with pytest.raises(ProviderBadRequestError, match="stream_options"):
        ask(p)
    assert len(server.requests) == 1


def test_read_timeout_after_streamed_text_is_not_retried(server: WireServer) -> None:
    server.script(Reply.sse(openai_text_stream(["first ", "second"]), stall_after=2, stall=3.0))
    p, delays = provider(server, timeout=0.4)
    seen: list = []

    with pytest.raises(ProviderTimeoutError):
        for event in p.stream([ChatMessage("user", "hi")], [], model="gpt-4o-mini"):
            seen.append(event)

    assert seen == [TextDelta("first ")]
    assert delays == []
    assert len(server.requests) == 1


def test_read_timeout_before_any_text_is_retried(server: WireServer) -> None:
    server.script(
        Reply.sse(openai_text_stream(["never"]), stall_after=1, stall=3.0),
        Reply.sse(openai_text_stream(["second try"], usage=openai_usage(2, 2))),
    )
    p, delays = provider(server, timeout=0.4)

    events = ask(p)

    assert TextDelta("second try") in events
    assert len(delays) == 1


HTML_PAGE = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"


@pytest.mark.parametrize("body", [HTML_PAGE, b""], ids=["html-page", "empty-body"])
def test_a_reply_that_is_not_a_completion_is_an_error_not_an_empty_answer(
    server: WireServer, body: bytes
) -> None:
    server.script(Reply.page(body))
    p, delays = provider(server)
    with pytest.raises(ProviderBadResponseError, match="not with a chat completion"):
        ask(p)
    assert delays == []  # a wrong base URL does not get better by asking again


def test_retry_after_beyond_the_cap_is_honoured_within_the_run_deadline(
    server: WireServer,
) -> None:
    import time

    server.script(
        Reply.error(429, headers={"retry-after": "20"}),
        Reply.sse(openai_text_stream(["ok"])),
    )
    policy, delays = fast_retry(3)
    p = OpenAIProvider(KEY, base_url=server.url + "/v1", retry=policy.until(time.monotonic() + 60))
    ask(p)
    assert delays == [20.0]  # the server's wait in full: it ends before the run's deadline

    server.script(Reply.error(429, headers={"retry-after": "20"}))
    p = OpenAIProvider(KEY, base_url=server.url + "/v1", retry=policy.until(time.monotonic() + 5))
    delays.clear()
    with pytest.raises(ProviderRateLimitError):
        ask(p)
    assert delays == []  # waiting 20 s would pass the deadline: give up at once
