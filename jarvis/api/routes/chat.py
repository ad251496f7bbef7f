"""Conversations, runs and the seed's ``/orchestrator/run`` (SSE) and ``/chat`` (waits).

A run belongs to the server: ``POST /orchestrator/run`` answers with the run's events as they
happen, and dropping that connection leaves the run going — ``GET /runs/{id}/events`` (with
``Last-Event-ID``) picks it up again, ``POST /runs/{id}/cancel`` stops it. Costs are USD
six-decimal strings (:mod:`jarvis.api.money`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, status
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from jarvis.api.deps import CurrentUser, ServicesDep
from jarvis.api.money import Usd
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.api.sse import event_stream, last_event_id
from jarvis.services.chat.runs import StartedRun
from jarvis.services.chat.views import (
    ConversationView,
    ModelCallStep,
    RunOutcome,
    RunTrace,
    RunView,
    ToolCallView,
    TurnView,
)
from jarvis.services.chat.views import TraceStep as TraceStepView

router = APIRouter(tags=["chat"], responses=PROBLEM_RESPONSES)

SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: one `id: <seq>` / `data: <event JSON>` per event "
        "(run_started, text_delta, model_call, tool_call_started, tool_call_finished, "
        "tool_call_denied, "
        "usage, then run_completed | run_failed | run_cancelled).",
        # One event: ``id`` is its sequence number, ``data`` its JSON.
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "id": {"type": "string"},
                        "event": {"type": "string"},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }
}


# -- models ------------------------------------------------------------------------------------


class Conversation(BaseModel):
    id: uuid.UUID
    title: str
    provider: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: ConversationView) -> Conversation:
        return cls(
            id=c.id,
            title=c.title,
            provider=c.provider,
            model=c.model,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class ToolCall(BaseModel):
    tool_id: str
    arguments: dict[str, Any]
    result: dict[str, Any] | None
    status: str
    latency_ms: int | None

    @classmethod
    def of(cls, c: ToolCallView) -> ToolCall:
        return cls(
            tool_id=c.tool_id,
            arguments=dict(c.arguments),
            result=dict(c.result) if c.result is not None else None,
            status=c.status,
            latency_ms=c.latency_ms,
        )


class Turn(BaseModel):
    run_id: uuid.UUID | None
    question: str
    answer: str
    status: str
    provider: str | None
    model: str | None
    total_tokens: int
    cost_usd: Usd | None
    unpriced: bool
    error: str | None
    tool_calls: list[ToolCall]

    @classmethod
    def of(cls, t: TurnView) -> Turn:
        return cls(
            run_id=t.run_id,
            question=t.user_text,
            answer=t.answer,
            status=t.status,
            provider=t.provider,
            model=t.model,
            total_tokens=t.total_tokens,
            cost_usd=t.cost_usd,
            unpriced=t.unpriced,
            error=t.error,
            tool_calls=[ToolCall.of(c) for c in t.tool_calls],
        )


class ConversationWithTurns(Conversation):
    turns: list[Turn]


class NewConversation(BaseModel):
    title: str | None = Field(None, max_length=200)
    provider: str = Field("offline", max_length=32)
    model: str | None = Field(None, max_length=200)


class ConversationChange(BaseModel):
    title: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=32)
    model: str | None = Field(None, max_length=200)


class Run(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID | None
    status: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Usd | None
    unpriced: bool
    usage_estimated: bool
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    cancel_requested: bool

    @classmethod
    def of(cls, r: RunView) -> Run:
        return cls(**{name: getattr(r, name) for name in cls.model_fields})


class TracePromptMessage(BaseModel):
    role: str
    content: str
    tool_call_id: str | None
    tool_calls: list[str]


class TraceStep(BaseModel):
    """A model call (``kind: model_call``) or a tool call (``kind: tool_call``) of a run."""

    kind: str
    status: str
    duration_ms: int | None
    # model calls
    step: int | None = None
    started_at: datetime | None = None
    first_token_ms: int | None = None
    prompt: list[TracePromptMessage] | None = None
    response: str | None = None
    tool_calls: list[str] | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    # tool calls
    tool_id: str | None = None
    arguments: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    @classmethod
    def of(cls, s: TraceStepView) -> TraceStep:
        if isinstance(s, ModelCallStep):
            return cls(
                kind="model_call",
                status=s.status,
                duration_ms=s.duration_ms,
                step=s.step,
                started_at=s.started_at,
                first_token_ms=s.first_token_ms,
                prompt=[
                    TracePromptMessage(
                        role=m.role,
                        content=m.content,
                        tool_call_id=m.tool_call_id,
                        tool_calls=list(m.tool_calls),
                    )
                    for m in s.prompt
                ],
                response=s.response,
                tool_calls=list(s.tool_calls),
                input_tokens=s.input_tokens,
                output_tokens=s.output_tokens,
                finish_reason=s.finish_reason,
                error=s.error,
            )
        return cls(
            kind="tool_call",
            status=s.status,
            duration_ms=s.duration_ms,
            tool_id=s.tool_id,
            arguments=dict(s.arguments),
            result=dict(s.result) if s.result is not None else None,
            error=s.error,
        )


class Trace(BaseModel):
    """One run as a trace: its latency, tokens and cost, and its steps in order."""

    id: uuid.UUID
    conversation_id: uuid.UUID | None
    status: str
    provider: str
    model: str
    timezone: str
    started_at: datetime
    finished_at: datetime | None
    latency_ms: int | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Usd | None
    unpriced: bool
    usage_estimated: bool
    error: str | None
    detailed: bool
    steps: list[TraceStep]

    @classmethod
    def of(cls, t: RunTrace) -> Trace:
        fields = {name: getattr(t, name) for name in cls.model_fields if name != "steps"}
        return cls(**fields, steps=[TraceStep.of(s) for s in t.steps])


class RunRequest(BaseModel):
    """A user turn. Without ``conversation_id`` a new conversation is started."""

    message: str = Field(min_length=1, max_length=20_000)
    conversation_id: uuid.UUID | None = None
    provider: str | None = Field(None, max_length=32, examples=["offline", "openai"])
    model: str | None = Field(None, max_length=200)


class Started(BaseModel):
    run_id: uuid.UUID
    conversation_id: uuid.UUID
    provider: str
    model: str

    @classmethod
    def of(cls, s: StartedRun) -> Started:
        return cls(
            run_id=s.run_id, conversation_id=s.conversation_id, provider=s.provider, model=s.model
        )


class ChatAnswer(BaseModel):
    run_id: uuid.UUID
    conversation_id: uuid.UUID
    status: str
    answer: str
    error: str | None
    total_tokens: int
    cost_usd: Usd | None
    unpriced: bool
    tool_calls: list[ToolCall]

    @classmethod
    def of(cls, o: RunOutcome) -> ChatAnswer:
        return cls(
            run_id=o.run_id,
            conversation_id=o.conversation_id,
            status=o.status,
            answer=o.answer,
            error=o.error,
            total_tokens=o.total_tokens,
            cost_usd=o.cost_usd,
            unpriced=o.unpriced,
            tool_calls=[ToolCall.of(c) for c in o.tool_calls],
        )


LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]


# -- conversations -------------------------------------------------------------------------------


@router.get("/conversations", response_model=list[Conversation])
def list_conversations(
    user: CurrentUser, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Conversation]:
    """Your conversations, most recently active first."""
    return [Conversation.of(c) for c in services.conversations.list(user, limit)]


@router.post("/conversations", response_model=Conversation, status_code=status.HTTP_201_CREATED)
def create_conversation(
    body: NewConversation, user: CurrentUser, services: ServicesDep
) -> Conversation:
    return Conversation.of(
        services.conversations.create_default(
            user, provider=body.provider, model=body.model, title=body.title
        )
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationWithTurns)
def get_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> ConversationWithTurns:
    """A conversation with its turns (question, tool steps, answer, cost)."""
    view, turns = services.conversations.with_history(user, conversation_id)
    return ConversationWithTurns(
        **Conversation.of(view).model_dump(), turns=[Turn.of(t) for t in turns]
    )


@router.patch("/conversations/{conversation_id}", response_model=Conversation)
def change_conversation(
    conversation_id: uuid.UUID, body: ConversationChange, user: CurrentUser, services: ServicesDep
) -> Conversation:
    """Rename, or switch the provider / model its next turns use."""
    return Conversation.of(
        services.conversations.change(
            user, conversation_id, title=body.title, provider=body.provider, model=body.model
        )
    )


@router.delete("/conversations/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, services: ServicesDep
) -> None:
    services.conversations.delete(user, conversation_id)


# -- runs ------------------------------------------------------------------------------------------


@router.post(
    "/orchestrator/run",
    response_class=EventSourceResponse,
    responses=SSE_DOC,
    summary="Start an agent run and stream its events (SSE)",
)
def orchestrator_run(
    body: RunRequest, user: CurrentUser, services: ServicesDep
) -> EventSourceResponse:
    """Start a turn; the response streams its events. Disconnecting does not stop the run:
    resume with ``GET /runs/{run_id}/events`` and ``Last-Event-ID``."""
    started = services.runs.start_in(
        user,
        body.message,
        conversation_id=body.conversation_id,
        provider=body.provider,
        model=body.model,
    )
    return event_stream(services.runs.stream(user, started.run_id))


@router.post("/runs", response_model=Started, status_code=status.HTTP_202_ACCEPTED)
def start_run(body: RunRequest, user: CurrentUser, services: ServicesDep) -> Started:
    """Start a turn and return at once with its id (follow it with ``/runs/{id}/events``)."""
    return Started.of(
        services.runs.start_in(
            user,
            body.message,
            conversation_id=body.conversation_id,
            provider=body.provider,
            model=body.model,
        )
    )


@router.post("/chat", response_model=ChatAnswer)
async def chat(body: RunRequest, user: CurrentUser, services: ServicesDep) -> ChatAnswer:
    """Start a turn and wait for its answer (no streaming)."""
    return ChatAnswer.of(
        await services.runs.answer(
            user,
            body.message,
            conversation_id=body.conversation_id,
            provider=body.provider,
            model=body.model,
        )
    )


@router.get("/runs/{run_id}", response_model=Run)
def get_run(run_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Run:
    return Run.of(services.runs.get(user, run_id))


@router.get("/runs/{run_id}/trace", response_model=Trace)
def get_run_trace(run_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Trace:
    """The run's steps in order (model calls with prompt and response, tool calls with
    arguments and result), its latency, tokens and cost; 404 for another user's run."""
    return Trace.of(services.traces.trace(user, run_id))


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse, responses=SSE_DOC)
def run_events(
    run_id: uuid.UUID,
    user: CurrentUser,
    services: ServicesDep,
    last_event: LastEventId = None,
    after: Annotated[int | None, Query(ge=0, le=2_000_000_000)] = None,
) -> EventSourceResponse:
    """Replay the run's events after ``Last-Event-ID`` (or ``after``), then follow it live."""
    return event_stream(
        services.runs.stream(
            user, run_id, after if after is not None else last_event_id(last_event)
        )
    )


@router.post("/runs/{run_id}/cancel", response_model=Run)
def cancel_run(run_id: uuid.UUID, user: CurrentUser, services: ServicesDep) -> Run:
    """Ask the run to stop (whichever process runs it stops within a second)."""
    return Run.of(services.runs.request_stop(user, run_id))
