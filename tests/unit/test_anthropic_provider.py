"""AnthropicProvider with the real ``anthropic`` SDK against a local server replaying the
Messages API streaming wire format (message_start, content_block_*, message_delta...)."""

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
from jarvis.llm.anthropic_provider import AnthropicProvider, to_anthropic_messages
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
from tests.llm_wire_server import (
    Reply,
    WireServer,
    anthropic_text_stream,
    anthropic_tool_stream,
    fast_retry,
)

KEY = "sk-ant-api03-TESTKEYabcdefghijklmnop"
SEARCH = ToolDefinition(
    "memory_search",
    "Search memories",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as wire:
        yield wire


def provider(
    server: WireServer, attempts: int = 3, **kw: object
) -> tuple[AnthropicProvider, list[float]]:
    policy, delays = fast_retry(attempts)
    return AnthropicProvider(KEY, base_url=server.url, retry=policy, **kw), delays  # type: ignore[arg-type]


def ask(p: AnthropicProvider, text: str = "hi", tools: list[ToolDefinition] | None = None) -> list:
    return list(p.stream([ChatMessage("user", text)], tools or [], model="claude-haiku-4-5"))


def test_text_streams_with_cache_usage(server: WireServer) -> None:
    server.script(
        Reply.sse(
            anthropic_text_stream(
                ["Hello", ", ", "there"],
                input_tokens=30,
                output_tokens=9,
                cache_read=200,
                cache_write=50,
            )
        )
    )
    p, _ = provider(server)

    events = ask(p)

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", ", ", "there"]
    assert events[-2] == UsageReport(
        Usage(input_tokens=30, output_tokens=9, cache_read_tokens=200, cache_write_tokens=50)
    )
    assert events[-1] == Finished("stop")


def test_max_tokens_stop_reason_is_length(server: WireServer) -> None:
    server.script(Reply.sse(anthropic_text_stream(["cut"], stop_reason="max_tokens")))
    p, _ = provider(server)

    assert ask(p)[-1] == Finished("length")


def test_tool_use_blocks_are_assembled(server: WireServer) -> None:
    server.script(
        Reply.sse(
            anthropic_tool_stream(
                [
                    ("toolu_1", "memory_search", ['{"que', 'ry": "Ali', 'ce"}']),
                    ("toolu_2", "current_time", []),
                ],
                text="Let me check.",
                input_tokens=80,
                output_tokens=33,
            )
        )
    )
    p, _ = provider(server)

    events = ask(p, "what do you know about Alice?", [SEARCH])

    assert events[0] == TextDelta("Let me check.")
    ready = next(e for e in events if isinstance(e, ToolCallsReady))
    assert ready.calls == [
        ToolCallRequest("toolu_1", "memory_search", {"query": "Alice"}),
        ToolCallRequest("toolu_2", "current_time", {}),
    ]
    assert events[-2] == UsageReport(Usage(input_tokens=80, output_tokens=33))
    assert events[-1] == Finished("tool_calls")


def test_request_separates_system_and_sends_tool_results(server: WireServer) -> None:
    server.script(Reply.sse(anthropic_text_stream(["ok"])))
    p, _ = provider(server)
    history = [
        ChatMessage("system", "You are Jarvis."),
        ChatMessage("system", "Memories: none."),
        ChatMessage("user", "find alice"),
        ChatMessage(
            "assistant",
            "Looking.",
            tool_calls=[ToolCallRequest("toolu_1", "memory_search", {"query": "alice"})],
        ),
        ChatMessage("tool", '{"results": []}', tool_call_id="toolu_1"),
    ]

    list(p.stream(history, [SEARCH], model="claude-haiku-4-5", max_tokens=300))

    request = server.requests[-1]
    assert request.path == "/v1/messages"
    # the key travels as x-api-key (older SDKs) or as a bearer token (this SDK)
    assert KEY in (
        request.headers.get("x-api-key"),
        request.headers.get("authorization", "").removeprefix("Bearer "),
    )
    body = request.body
    assert body["system"] == "You are Jarvis.\n\nMemories: none."
    assert body["max_tokens"] == 300
    assert body["stream"] is True
    assert body["tools"] == [
        {
            "name": "memory_search",
            "description": "Search memories",
            "input_schema": SEARCH.parameters,
        }
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "memory_search", "input": {"query": "alice"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"results": []}'}
    ]


def test_parallel_tool_results_and_next_user_text_share_one_user_turn() -> None:
    system, turns = to_anthropic_messages(
        [
            ChatMessage("user", "q"),
            ChatMessage(
                "assistant",
                "",
                tool_calls=[
                    ToolCallRequest("a", "x", {}),
                    ToolCallRequest("b", "y", {}, arguments_raw="{oops"),
                ],
            ),
            ChatMessage("tool", "1", tool_call_id="a"),
            ChatMessage("tool", "2", tool_call_id="b"),
            ChatMessage("user", "and?"),
        ]
    )

    assert system == ""
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][1]["input"] == {"_invalid_json": "{oops"}
    assert [b["type"] for b in turns[2]["content"]] == ["tool_result", "tool_result", "text"]


def test_overloaded_then_success(server: WireServer) -> None:
    server.script(Reply.error(529, "Overloaded"), Reply.sse(anthropic_text_stream(["back"])))
    p, delays = provider(server)

    events = ask(p)

    assert TextDelta("back") in events
    assert len(delays) == 1


def test_rate_limit_then_success(server: WireServer) -> None:
    server.script(Reply.error(429, "rate_limit_error"), Reply.sse(anthropic_text_stream(["ok"])))
    p, delays = provider(server)

    assert TextDelta("ok") in ask(p)
    assert len(server.requests) == 2
    assert len(delays) == 1


def test_server_error_until_give_up(server: WireServer) -> None:
    server.script(Reply.error(500, "api_error"))
    p, delays = provider(server, attempts=4)

    with pytest.raises(ProviderServerError, match="gave up after 4 attempts"):
        ask(p)
    assert len(server.requests) == 4
    assert len(delays) == 3
    assert delays == sorted(delays)  # exponential growth outweighs the jitter here


def test_rate_limit_until_give_up(server: WireServer) -> None:
    server.script(Reply.error(429))
    p, _ = provider(server, attempts=2)

    with pytest.raises(ProviderRateLimitError):
        ask(p)


def test_timeout(server: WireServer) -> None:
    server.script(Reply(delay=3.0, events=anthropic_text_stream(["late"])))
    p, _ = provider(server, attempts=1, timeout=0.3)

    with pytest.raises(ProviderTimeoutError):
        ask(p)
    assert len(server.requests) == 1


def test_permission_denied_is_auth_error_without_key(server: WireServer) -> None:
    server.script(Reply.error(403, f"key {KEY} may not use this model"))
    p, delays = provider(server)

    with pytest.raises(ProviderAuthError) as info:
        ask(p)
    assert KEY not in str(info.value)
    assert delays == []


def test_bad_request_is_not_retried(server: WireServer) -> None:
    server.script(Reply.error(400, "messages: roles must alternate"))
    p, delays = provider(server)

    with pytest.raises(ProviderBadRequestError, match="roles must alternate"):
        ask(p)
    assert delays == []
    assert len(server.requests) == 1


def test_error_event_mid_stream_after_text_is_not_retried(server: WireServer) -> None:
    events = anthropic_text_stream(["partial"])[:4] + [
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ]
    server.script(Reply.sse(events))
    p, delays = provider(server)
    seen: list = []

    with pytest.raises(ProviderServerError):
        for event in p.stream([ChatMessage("user", "hi")], [], model="claude-haiku-4-5"):
            seen.append(event)

    assert seen == [TextDelta("partial")]
    assert delays == []


def test_repr_never_shows_the_key(server: WireServer) -> None:
    p, _ = provider(server)

    assert KEY not in repr(p) and KEY not in str(p)


def test_read_timeout_mid_stream_is_a_timeout_and_not_retried(server: WireServer) -> None:
    server.script(Reply.sse(anthropic_text_stream(["partial", "rest"]), stall_after=4, stall=3.0))
    p, delays = provider(server, timeout=0.4)
    seen: list = []

    with pytest.raises(ProviderTimeoutError):
        for event in p.stream([ChatMessage("user", "hi")], [], model="claude-haiku-4-5"):
            seen.append(event)

    assert seen == [TextDelta("partial")]
    assert delays == []


def test_truncated_history_opens_with_a_user_turn_and_errors_are_flagged() -> None:
    _, turns = to_anthropic_messages(
        [
            ChatMessage("system", "sys"),
            ChatMessage("assistant", "an old answer whose question was cut off"),
            ChatMessage("user", "  "),
            ChatMessage("user", "now"),
            ChatMessage("assistant", "", tool_calls=[ToolCallRequest("t1", "calculator", {})]),
            ChatMessage("tool", '{"status": "denied", "error": "not allowed"}', tool_call_id="t1"),
        ]
    )

    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == [{"type": "text", "text": "now"}]
    assert turns[2]["content"][0]["is_error"] is True


@pytest.mark.parametrize(
    "body",
    [b"<!doctype html><html><body>Bad gateway, but 200</body></html>", b""],
    ids=["html-page", "empty-body"],
)
def test_a_reply_that_is_not_a_message_is_an_error_not_an_empty_answer(
    server: WireServer, body: bytes
) -> None:
    server.script(Reply.page(body))
    p, delays = provider(server)
    with pytest.raises(ProviderBadResponseError, match="not with a message"):
        ask(p)
    assert delays == []
