"""Anthropic Messages API (streaming, tool use, prompt-cache usage)."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic

from jarvis.errors import ProviderBadResponseError
from jarvis.llm.base import (
    LENGTH,
    STOP,
    TOOL_CALLS,
    ChatMessage,
    Finished,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    ToolCallsReady,
    ToolDefinition,
    Usage,
    UsageReport,
)
from jarvis.llm.errors import RetryPolicy
from jarvis.llm.streaming import guarded_stream

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires max_tokens

_STOP_REASONS = {
    "end_turn": STOP,
    "stop_sequence": STOP,
    "tool_use": TOOL_CALLS,
    "max_tokens": LENGTH,
}


class AnthropicProvider:
    """:class:`~jarvis.llm.base.LLMProvider` over the ``anthropic`` SDK.

    System messages become the ``system`` parameter; tool results become ``tool_result``
    blocks of a user turn. The SDK's retries and its own tracing are off: Jarvis'
    :class:`RetryPolicy` and ``llm.call`` span are the ones.
    """

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = "anthropic"
        self._secret = api_key
        self._retry = retry or RetryPolicy()
        self._client = anthropic.Anthropic(
            api_key=api_key or "",
            base_url=base_url or ANTHROPIC_BASE_URL,
            timeout=timeout,
            max_retries=0,
            open_telemetry=False,
        )

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(name={self.name!r}, base_url={str(self._client.base_url)!r})"

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str,
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        """One Messages API turn, streamed (see :class:`~jarvis.llm.base.LLMProvider`)."""
        system, turns = to_anthropic_messages(messages)
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
            "messages": turns,
            "stream": True,
        }
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [
                {
                    "name": t.name,
                    "description": t.description,
                    "input_schema": t.parameters or {"type": "object", "properties": {}},
                }
                for t in tools
            ]
        return guarded_stream(
            lambda: self._attempt(request),
            provider=self.name,
            model=model,
            policy=self._retry,
            secret=self._secret,
        )

    def _attempt(self, request: dict[str, Any]) -> Generator[StreamEvent, None, None]:
        events = self._client.messages.create(**request)
        state = _TurnState()
        started = False
        try:
            for event in events:
                started = started or getattr(event, "type", None) == "message_start"
                text = state.apply(event)
                if text:
                    yield TextDelta(text)
        finally:
            events.close()
        if not started:
            raise ProviderBadResponseError(
                "Anthropic answered, but not with a message (an empty or non-JSON reply). "
                "Check the base URL of your key.",
                provider="anthropic",
            )
        calls = state.calls()
        if calls:
            yield ToolCallsReady(calls)
        yield UsageReport(state.usage())
        if calls:
            yield Finished(TOOL_CALLS)
        else:
            reason = state.stop_reason or "end_turn"
            yield Finished(_STOP_REASONS.get(reason, reason))


@dataclass
class _ToolBlock:
    id: str
    name: str
    json_parts: list[str] = field(default_factory=list)
    initial: dict[str, Any] = field(default_factory=dict)


@dataclass
class _TurnState:
    """Folds the raw stream events of one message into text, tool calls and usage."""

    tools: dict[int, _ToolBlock] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0
    stop_reason: str | None = None

    def apply(self, event: Any) -> str:
        """Take one event; return text to stream (``""`` if none)."""
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self._usage(getattr(event.message, "usage", None))
        elif kind == "content_block_start":
            block = event.content_block
            if getattr(block, "type", None) == "tool_use":
                initial = block.input if isinstance(block.input, dict) else {}
                self.tools[event.index] = _ToolBlock(block.id, block.name, initial=initial)
            elif getattr(block, "type", None) == "text" and getattr(block, "text", ""):
                return str(block.text)
        elif kind == "content_block_delta":
            delta = event.delta
            delta_type = getattr(delta, "type", None)
            if delta_type == "text_delta":
                return str(delta.text)
            if delta_type == "input_json_delta" and event.index in self.tools:
                self.tools[event.index].json_parts.append(delta.partial_json)
        elif kind == "message_delta":
            reason = getattr(event.delta, "stop_reason", None)
            if reason:
                self.stop_reason = str(reason)
            self._usage(getattr(event, "usage", None))
        return ""

    def _usage(self, usage: Any) -> None:
        """Counts in message_delta are cumulative: keep the latest value that was sent."""
        if usage is None:
            return
        for attr, target in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_read_input_tokens", "cache_read"),
            ("cache_creation_input_tokens", "cache_write"),
        ):
            value = getattr(usage, attr, None)
            if value is not None:
                setattr(self, target, int(value))

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read,
            cache_write_tokens=self.cache_write,
        )

    def calls(self) -> list[ToolCallRequest]:
        result = []
        for _, block in sorted(self.tools.items()):
            raw = "".join(block.json_parts)
            if raw.strip():
                result.append(ToolCallRequest.from_json(block.id, block.name, raw))
            else:
                result.append(ToolCallRequest(block.id, block.name, dict(block.initial)))
        return result


def to_anthropic_messages(
    messages: list[ChatMessage],
) -> tuple[str, list[dict[str, Any]]]:
    """Split off the system prompt; turn the rest into alternating user / assistant turns.

    Tool results become ``tool_result`` blocks of a user turn; adjacent messages of the same
    role are merged, since the API wants strict alternation.
    """
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content:
                system_parts.append(message.content)
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    # The API wants the conversation to open with a user turn (history may be truncated).
    while turns and turns[0]["role"] == "assistant":
        turns.pop(0)
    return "\n\n".join(system_parts), turns


def _blocks(message: ChatMessage) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id or "",
            "content": message.content,
        }
        if _is_error_result(message.content):
            block["is_error"] = True
        return "user", [block]
    blocks: list[dict[str, Any]] = []
    if message.content.strip():  # the API refuses empty / whitespace-only text blocks
        blocks.append({"type": "text", "text": message.content})
    if message.role == "assistant":
        for call in message.tool_calls:
            arguments = call.arguments
            if call.arguments_raw is not None:
                # the API needs an object; keep what the model sent, visibly, for the retry
                arguments = {"_invalid_json": call.arguments_raw}
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}
            )
        return "assistant", blocks
    return "user", blocks


def _is_error_result(content: str) -> bool:
    """The orchestrator encodes failed / denied tool calls as ``{"status": "error", ...}``."""
    if not content.startswith("{"):
        return False
    try:
        value = json.loads(content)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("status") in ("error", "denied")
