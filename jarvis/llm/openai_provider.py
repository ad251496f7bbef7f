"""OpenAI Chat Completions (streaming, tools, usage) — also any OpenAI-compatible server
(Ollama, vLLM, LM Studio, OpenRouter) through ``base_url``."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

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
from jarvis.llm.errors import RetryPolicy, provider_label
from jarvis.llm.streaming import guarded_stream

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 60.0
# Local servers (Ollama, LM Studio) accept any key; the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"

_STOP_REASONS = {
    "stop": STOP,
    "tool_calls": TOOL_CALLS,
    "function_call": TOOL_CALLS,
    "length": LENGTH,
}


class OpenAIProvider:
    """:class:`~jarvis.llm.base.LLMProvider` over the ``openai`` SDK.

    ``name`` is ``"openai"`` or ``"openai_compatible"`` (then ``base_url`` is required and the
    key optional; ``http_client`` the guarded client of
    :mod:`jarvis.llm.outbound_http` for a user-supplied URL). The SDK's own retries are off (``max_retries=0``): :class:`RetryPolicy` is
    the one policy.
    """

    def __init__(
        self,
        api_key: str | None,
        *,
        name: str = "openai",
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        http_client: Any = None,
    ) -> None:
        self.name = name
        self._secret = api_key
        self._retry = retry or RetryPolicy()
        self._client = openai.OpenAI(
            api_key=api_key or PLACEHOLDER_KEY,
            base_url=base_url or OPENAI_BASE_URL,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
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
        """One Chat Completions turn, streamed (see :class:`~jarvis.llm.base.LLMProvider`)."""
        request: dict[str, Any] = {
            "model": model,
            "messages": [to_openai_message(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            request["tools"] = [to_openai_tool(t) for t in tools]
        if max_tokens is not None:
            # OpenAI deprecated max_tokens; compatible servers mostly only know max_tokens.
            key = "max_completion_tokens" if self.name == "openai" else "max_tokens"
            request[key] = max_tokens
        return guarded_stream(
            lambda: self._attempt(request),
            provider=self.name,
            model=model,
            policy=self._retry,
            secret=self._secret,
        )

    def _attempt(self, request: dict[str, Any]) -> Generator[StreamEvent, None, None]:
        try:
            chunks = self._client.chat.completions.create(**request)
        except openai.BadRequestError as exc:
            # Some compatible servers refuse stream_options: ask again without (no usage then).
            if self.name == "openai" or "stream_options" not in str(exc.body or exc.message):
                raise
            request = {k: v for k, v in request.items() if k != "stream_options"}
            chunks = self._client.chat.completions.create(**request)
        assembler = _ToolCallAssembler()
        usage = Usage()
        finish: str | None = None
        valid = False  # at least one completion chunk arrived
        try:
            for chunk in chunks:
                if getattr(chunk, "object", None) == "chat.completion.chunk" or chunk.choices:
                    valid = True
                if chunk.usage is not None:
                    usage = usage_from_openai(chunk.usage)
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            yield TextDelta(delta.content)
                        for fragment in delta.tool_calls or []:
                            assembler.add(fragment)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        finally:
            chunks.close()
        if not valid:
            # A 200 that was no completion: an HTML page from a proxy, an empty body, JSON
            # without chunks. Never "completed" with an empty answer.
            raise ProviderBadResponseError(
                f"{provider_label(self.name)} answered, but not with a chat completion (an "
                "empty or non-JSON reply). Check the base URL of your key.",
                provider=self.name,
            )
        calls = assembler.calls()
        if calls:
            yield ToolCallsReady(calls)
        yield UsageReport(usage)
        if calls:
            yield Finished(TOOL_CALLS)
        else:
            yield Finished(_STOP_REASONS.get(finish or "stop", finish or STOP))


def usage_from_openai(usage: Any) -> Usage:
    """Disjoint buckets: OpenAI's ``prompt_tokens`` includes the cached tokens."""
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    output = int(getattr(usage, "completion_tokens", 0) or 0)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
    cached = min(cached, prompt)
    return Usage(input_tokens=prompt - cached, output_tokens=output, cache_read_tokens=cached)


@dataclass
class _Slot:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _ToolCallAssembler:
    """Joins streamed tool-call fragments (``index`` / ``id`` / ``name`` first, then argument
    pieces) into complete calls, in index order."""

    def __init__(self) -> None:
        self._slots: dict[int, _Slot] = {}
        self._last: int | None = None

    def add(self, fragment: Any) -> None:
        index = fragment.index
        if index is None:  # some compatible servers omit it: a new id starts a new call
            index = len(self._slots) if fragment.id or self._last is None else self._last
        slot = self._slots.setdefault(index, _Slot())
        self._last = index
        if fragment.id:
            slot.id = fragment.id
        function = fragment.function
        if function is not None:
            if function.name and not slot.name:
                slot.name = function.name
            if function.arguments:
                slot.arguments.append(function.arguments)

    def calls(self) -> list[ToolCallRequest]:
        return [
            ToolCallRequest.from_json(
                slot.id or f"call_{index}", slot.name, "".join(slot.arguments)
            )
            for index, slot in sorted(self._slots.items())
            if slot.name
        ]


def to_openai_tool(tool: ToolDefinition) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters or {"type": "object", "properties": {}},
        },
    }


def to_openai_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.arguments_raw
                        if call.arguments_raw is not None
                        else json.dumps(call.arguments),
                    },
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}
