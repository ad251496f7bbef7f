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
    "ProviderChoice",
    "RunOutcome",
    "RunView",
    "ToolCallView",
    "TurnView",
]
