"""The LLM provider port: messages and tools in, a typed stream of events out.

Every adapter (OpenAI, Anthropic, OpenAI-compatible, offline, the test fake) implements
:class:`LLMProvider`. One call of :meth:`LLMProvider.stream` is one model turn; the
orchestrator runs the tool loop around it.

Event order of one ``stream()`` call (the contract every adapter keeps)::

    TextDelta*  ToolCallsReady?  UsageReport  Finished

- ``TextDelta`` chunks as they arrive (possibly none, e.g. a pure tool-call turn);
- at most one ``ToolCallsReady`` with every complete tool call of the turn (arguments
  already assembled from the streamed fragments and parsed);
- exactly one ``UsageReport`` (zeros when the server reported nothing);
- ``Finished`` last, with a normalised ``stop_reason``: ``"stop"`` (normal end),
  ``"tool_calls"`` (the model wants tools run), ``"length"`` (max tokens hit), or the
  provider's raw reason for anything else.

Errors are raised as :mod:`jarvis.errors` ``ProviderError`` subclasses, never SDK types.
Closing the iterator early (``.close()`` / breaking out) cancels the HTTP stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from jarvis.validation import MAX_JSON_DEPTH, json_text_depth, storable_text

Role = Literal["system", "user", "assistant", "tool"]
#: Longest tool-call id or tool name kept from a model.
MAX_CALL_ID_CHARS = 200

STOP = "stop"
TOOL_CALLS = "tool_calls"
LENGTH = "length"


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool offered to the model: ``parameters`` is a JSON-schema object."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """One tool call the model asked for.

    ``arguments`` is the parsed JSON object. When the model produced something that is not a
    JSON object, ``arguments`` is ``{}`` and ``arguments_raw`` keeps the raw text (so the
    orchestrator can report a schema error back to the model); otherwise it is ``None``.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_raw: str | None = None

    def __post_init__(self) -> None:
        # The model chose these strings: they end up in events, rows and messages, so they are
        # one line of storable text (no NUL, no lone surrogate), whatever the model sent.
        object.__setattr__(self, "id", storable_text(self.id, MAX_CALL_ID_CHARS))
        object.__setattr__(self, "name", storable_text(self.name, MAX_CALL_ID_CHARS))

    @property
    def arguments_valid(self) -> bool:
        return self.arguments_raw is None

    @classmethod
    def from_json(cls, id: str, name: str, raw: str | None) -> ToolCallRequest:
        """Parse streamed argument text: empty means ``{}``; invalid keeps ``arguments_raw``
        (so does text nested deeper than any tool takes, refused before parsing: no
        recursion however deep a model nests)."""
        text = (raw or "").strip()
        if not text:
            return cls(id=id, name=name, arguments={})
        if json_text_depth(text) > MAX_JSON_DEPTH:
            return cls(id=id, name=name, arguments={}, arguments_raw=raw)
        try:
            value = json.loads(text)
        except ValueError:
            return cls(id=id, name=name, arguments={}, arguments_raw=raw)
        if not isinstance(value, dict):
            return cls(id=id, name=name, arguments={}, arguments_raw=raw)
        return cls(id=id, name=name, arguments=value)


@dataclass(slots=True)
class ChatMessage:
    """One message of the conversation as sent to the model.

    - ``system`` / ``user``: ``content`` only.
    - ``assistant``: ``content`` (may be ``""``) and the ``tool_calls`` it made.
    - ``tool``: the result of one call; ``content`` is the result text (usually JSON) and
      ``tool_call_id`` the id of the :class:`ToolCallRequest` it answers.
    """

    role: Role
    content: str
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one model call (or a sum of several), in four DISJOINT buckets so each
    can be priced at its own rate:

    - ``input_tokens``: prompt tokens read at the normal input price (cache hits excluded —
      OpenAI's ``prompt_tokens`` minus ``cached_tokens``; Anthropic's ``input_tokens``);
    - ``output_tokens``: generated tokens;
    - ``cache_read_tokens``: prompt tokens served from the provider's prompt cache;
    - ``cache_write_tokens``: prompt tokens written to the cache (Anthropic only).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """Every token of the prompt, whatever its cache state."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallsReady:
    calls: list[ToolCallRequest]


@dataclass(frozen=True, slots=True)
class UsageReport:
    usage: Usage


@dataclass(frozen=True, slots=True)
class Finished:
    stop_reason: str


StreamEvent = TextDelta | ToolCallsReady | UsageReport | Finished


@runtime_checkable
class LLMProvider(Protocol):
    """Port of every chat model. ``name`` is the provider id (``openai``, ``anthropic``,
    ``openai_compatible``, ``offline``, ``fake``). A provider computed in this process that
    never blocks may say ``in_process = True``: runs then read its stream without a helper
    thread (that thread exists so Stop can interrupt a blocking network read)."""

    name: str

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str,
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        """Run one model turn and yield its events (see the module docstring for the order).

        Raises :class:`jarvis.errors.ProviderError` subclasses. Retries of transient errors
        (429, 5xx, timeouts) happen inside, before any event was yielded.
        """
        ...


# -- test double --------------------------------------------------------------------------


@dataclass(slots=True)
class ScriptedReply:
    """What a :class:`FakeProvider` handler may return instead of raw events."""

    text: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    usage: Usage | None = None
    stop_reason: str | None = None


FakeHandler = Callable[
    [list[ChatMessage], list[ToolDefinition]], "str | ScriptedReply | Iterable[StreamEvent]"
]


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4/3 tokens per word) for fakes and the offline model."""
    words = len(text.split())
    return (words * 4 + 2) // 3 if words else 0


def reply_events(reply: str | ScriptedReply, messages: Sequence[ChatMessage]) -> list[StreamEvent]:
    """Turn a scripted reply into the event sequence of the port (text in word chunks)."""
    if isinstance(reply, str):
        reply = ScriptedReply(text=reply)
    events: list[StreamEvent] = []
    if reply.text:
        words = reply.text.split(" ")
        events.extend(TextDelta(word if i == 0 else " " + word) for i, word in enumerate(words))
    if reply.tool_calls:
        events.append(ToolCallsReady(list(reply.tool_calls)))
    usage = reply.usage or Usage(
        input_tokens=sum(estimate_tokens(m.content) for m in messages) + 4 * len(messages),
        output_tokens=estimate_tokens(reply.text)
        + sum(estimate_tokens(json.dumps(c.arguments)) + 4 for c in reply.tool_calls),
    )
    events.append(UsageReport(usage))
    events.append(Finished(reply.stop_reason or (TOOL_CALLS if reply.tool_calls else STOP)))
    return events


class FakeProvider:
    """A provider for tests: ``handler(messages, tools)`` returns a reply text, a
    :class:`ScriptedReply` or a list of events; it may also raise a ``ProviderError``.

    Every call is recorded in :attr:`calls` as ``(messages, tools, model)``.
    """

    def __init__(self, handler: FakeHandler, *, name: str = "fake") -> None:
        self.name = name
        self._handler = handler
        self.calls: list[tuple[list[ChatMessage], list[ToolDefinition], str]] = []

    @classmethod
    def scripted(
        cls, replies: Iterable[str | ScriptedReply], *, name: str = "fake"
    ) -> FakeProvider:
        """A fake answering each call with the next reply; fails the test when they run out."""
        queue = list(replies)

        def handler(
            _messages: list[ChatMessage], _tools: list[ToolDefinition]
        ) -> str | ScriptedReply:
            if not queue:
                raise AssertionError("FakeProvider: no scripted reply left")
            return queue.pop(0)

        return cls(handler, name=name)

    def stream(
        self,
        messages: list[ChatMessage],
        tools: list[ToolDefinition],
        *,
        model: str,
        max_tokens: int | None = None,  # noqa: ARG002 - the port's signature; fakes ignore it
    ) -> Iterator[StreamEvent]:
        self.calls.append((list(messages), list(tools), model))
        result = self._handler(list(messages), list(tools))
        if isinstance(result, str | ScriptedReply):
            yield from reply_events(result, messages)
        else:
            yield from result
