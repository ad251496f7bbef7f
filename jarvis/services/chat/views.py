"""What the chat capability returns to pages (and, later, to the HTTP API): plain frozen
dataclasses, never ORM rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from jarvis.llm.factory import ProviderChoice

#: A JSON value as stored in the ``jsonb`` columns (tool arguments and results).
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject = dict[str, JSONValue]


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: uuid.UUID
    title: str
    provider: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime
    #: An answer is in progress in this conversation (set by listings, else False).
    running: bool = False


@dataclass(frozen=True, slots=True)
class ConversationGroup:
    """Conversations last active in one period ("Today", "Yesterday", ...), newest first."""

    label: str
    conversations: list[ConversationView]


@dataclass(frozen=True, slots=True)
class ToolCallView:
    id: uuid.UUID
    tool_id: str
    arguments: JSONObject
    result: JSONObject | None
    status: str
    latency_ms: int | None


@dataclass(frozen=True, slots=True)
class TurnView:
    """One user turn of a conversation: the question, the tool steps, the answer and its cost."""

    run_id: uuid.UUID | None
    user_text: str
    answer: str
    status: str
    provider: str | None
    model: str | None
    total_tokens: int
    cost_usd: Decimal | None
    unpriced: bool
    error: str | None
    tool_calls: list[ToolCallView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunView:
    """One agent run: where it stands and what it cost so far."""

    id: uuid.UUID
    conversation_id: uuid.UUID | None
    status: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    unpriced: bool
    usage_estimated: bool
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class PromptMessage:
    """One message of what a model call was sent (``tool_calls`` as ``name({json})``)."""

    role: str
    content: str
    tool_call_id: str | None = None
    tool_calls: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ModelCallStep:
    """One model call of a run's trace: the whole prompt, the response, tokens, duration."""

    step: int
    started_at: datetime | None
    duration_ms: int
    first_token_ms: int | None
    prompt: list[PromptMessage]
    response: str
    #: The tool calls the model asked for, as ``name({json arguments})``.
    tool_calls: list[str]
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    status: str  # ok | error | stopped
    error: str | None
    finish_reason: str

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


@dataclass(frozen=True, slots=True)
class ToolCallStep:
    """One tool call of a run's trace."""

    call_id: str
    tool_id: str
    arguments: JSONObject
    result: JSONObject | None
    status: str  # ok | error | denied | running
    duration_ms: int | None
    error: str | None


TraceStep = ModelCallStep | ToolCallStep


@dataclass(frozen=True, slots=True)
class RunTrace:
    """One run as a trace: the header and its steps in order (see :mod:`.trace`)."""

    id: uuid.UUID
    conversation_id: uuid.UUID | None
    status: str
    provider: str
    model: str
    #: The user's time zone: ``started_at`` / ``finished_at`` and the steps' times are in it.
    timezone: str
    started_at: datetime
    finished_at: datetime | None
    #: From start to end (None while running).
    latency_ms: int | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    unpriced: bool
    usage_estimated: bool
    error: str | None
    #: The user's message and the answer of the run.
    question: str
    answer: str
    steps: list[TraceStep]
    #: The log holds each model call (False for a run from before they were logged).
    detailed: bool

    @property
    def model_calls(self) -> list[ModelCallStep]:
        return [s for s in self.steps if isinstance(s, ModelCallStep)]

    @property
    def tool_calls(self) -> list[ToolCallStep]:
        return [s for s in self.steps if isinstance(s, ToolCallStep)]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, for callers that wait for the answer (``POST /chat``)."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    status: str
    answer: str
    error: str | None
    total_tokens: int
    cost_usd: Decimal | None
    unpriced: bool
    tool_calls: list[ToolCallView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChatOverview:
    """Everything the chat page shows before a new turn: the conversation list, the open
    conversation with its turns, and the providers the user may pick."""

    conversations: list[ConversationView]
    current: ConversationView | None
    turns: list[TurnView]
    choices: list[ProviderChoice]
    #: The open conversation's run in progress (the page follows its log), if any.
    active_run_id: uuid.UUID | None = None
    #: Conversations with a run in progress (marked in the list).
    running: frozenset[uuid.UUID] = frozenset()
    #: ``conversations`` by when they were last active (see :mod:`.listing`).
    groups: list[ConversationGroup] = field(default_factory=list)
    #: The title search the list was filtered by ("" for none).
    query: str = ""
    #: More conversations match than were listed (the page offers "Show more").
    has_more: bool = False


__all__ = [
    "ChatOverview",
    "ConversationGroup",
    "ConversationView",
    "JSONObject",
    "JSONValue",
    "ModelCallStep",
    "PromptMessage",
    "ProviderChoice",
    "RunOutcome",
    "RunTrace",
    "RunView",
    "ToolCallStep",
    "ToolCallView",
    "TraceStep",
    "TurnView",
]
