"""Typed events of one agent run: what the run's event log holds, the page renders, and the
HTTP API sends as SSE.

Every event is a frozen dataclass with a ``type``, ``to_dict()`` / ``to_json()``, and
:func:`from_dict` turns a logged payload back into the typed event. The stream of one run is:
``run_started`` -> (``text_delta`` | ``model_call`` | ``tool_call_started`` ->
``tool_call_finished`` | ``tool_call_denied`` | ``usage``)* -> exactly one of ``run_completed`` /
``run_failed`` / ``run_cancelled``. A ``model_call`` closes each model call (what was sent, what
came back, its tokens and duration): the run's trace view is built from them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar


def _default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


#: Field values that come back from a JSON round trip unchanged (a UUID as its text).
_FLAT = frozenset({str, int, float, bool, type(None), uuid.UUID})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True)
class RunEvent:
    """Base of every run event."""

    type: ClassVar[str] = "event"
    run_id: uuid.UUID

    def to_dict(self) -> dict[str, Any]:
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in fields(self))
        values = [getattr(self, name) for name in names]
        if all(type(v) in _FLAT for v in values):  # most events: what JSON would give back
            flat = (str(v) if type(v) is uuid.UUID else v for v in values)
            return {"type": self.type, **dict(zip(names, flat, strict=True))}
        data = asdict(self)
        return {"type": self.type, **json.loads(json.dumps(data, default=_default))}

    def to_json(self) -> str:
        """One JSON object (the ``data:`` line of an SSE message)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class RunStarted(RunEvent):
    type: ClassVar[str] = "run_started"
    conversation_id: uuid.UUID
    provider: str
    model: str
    user_message_id: uuid.UUID
    #: Soft budget warning (80 % of the monthly budget spent).
    budget_warning: bool = False
    budget_fraction: float | None = None


@dataclass(frozen=True)
class TextDelta(RunEvent):
    type: ClassVar[str] = "text_delta"
    text: str


@dataclass(frozen=True)
class ToolCallStarted(RunEvent):
    type: ClassVar[str] = "tool_call_started"
    call_id: str
    tool_id: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCallFinished(RunEvent):
    type: ClassVar[str] = "tool_call_finished"
    call_id: str
    tool_id: str
    status: str  # "ok" | "error"
    result: dict[str, Any] = field(default_factory=dict)
    latency_ms: int = 0


@dataclass(frozen=True)
class ToolCallDenied(RunEvent):
    type: ClassVar[str] = "tool_call_denied"
    call_id: str
    tool_id: str
    reason: str


@dataclass(frozen=True)
class ModelCall(RunEvent):
    """One model call, logged when it ends (also when it failed or was stopped).

    ``prompt`` holds only the messages added since the previous call (``prompt_offset`` is the
    index of the first one in the full prompt): the whole prompt of call *n* is the ``prompt``
    of calls 1..n joined, so a long conversation is not stored once per step. Each message is
    ``{"role", "content"}`` (+ ``tool_call_id`` / ``tool_calls``), its content bounded."""

    type: ClassVar[str] = "model_call"
    step: int
    started_at: datetime
    duration_ms: int
    prompt: list[dict[str, Any]] = field(default_factory=list)
    prompt_offset: int = 0
    response: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    #: Milliseconds until the first streamed item (None: nothing came).
    first_token_ms: int | None = None
    #: ``ok``, ``error`` (the provider failed) or ``stopped`` (Stop, a cap, the deadline).
    status: str = "ok"
    error: str = ""
    finish_reason: str = ""


@dataclass(frozen=True)
class UsageUpdate(RunEvent):
    """Running totals of the run so far (after each model call)."""

    type: ClassVar[str] = "usage"
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    unpriced: bool
    #: The tokens were estimated from the text (the provider reported no usage).
    estimated: bool = False


@dataclass(frozen=True)
class RunCompleted(RunEvent):
    type: ClassVar[str] = "run_completed"
    message_id: uuid.UUID
    text: str
    total_tokens: int
    cost_usd: Decimal | None
    unpriced: bool
    steps: int
    #: Why the model's last call ended: ``stop`` or ``length`` (its output token cap).
    finish_reason: str = "stop"


@dataclass(frozen=True)
class RunFailed(RunEvent):
    type: ClassVar[str] = "run_failed"
    error: str
    total_tokens: int = 0
    cost_usd: Decimal | None = None
    #: The :mod:`jarvis.errors` class that ended the run (e.g. ``ProviderRateLimitError``);
    #: empty for an unexpected error or a run closed by recovery.
    error_type: str = ""


@dataclass(frozen=True)
class RunCancelled(RunEvent):
    type: ClassVar[str] = "run_cancelled"
    total_tokens: int = 0
    cost_usd: Decimal | None = None


Event = (
    RunStarted
    | TextDelta
    | ToolCallStarted
    | ToolCallFinished
    | ToolCallDenied
    | ModelCall
    | UsageUpdate
    | RunCompleted
    | RunFailed
    | RunCancelled
)

TERMINAL_EVENTS: tuple[type[RunEvent], ...] = (RunCompleted, RunFailed, RunCancelled)

TERMINAL_TYPES: frozenset[str] = frozenset(cls.type for cls in TERMINAL_EVENTS)

_BY_TYPE: dict[str, type[RunEvent]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        TextDelta,
        ToolCallStarted,
        ToolCallFinished,
        ToolCallDenied,
        ModelCall,
        UsageUpdate,
        RunCompleted,
        RunFailed,
        RunCancelled,
    )
}


def _parse(annotation: object, value: Any) -> Any:
    hint = str(annotation)
    if value is None:
        return None
    if hint.startswith("uuid.UUID"):
        return uuid.UUID(str(value))
    if hint.startswith("Decimal"):
        return Decimal(str(value))
    if hint.startswith("datetime"):
        return datetime.fromisoformat(str(value))
    return value


def from_dict(data: dict[str, Any]) -> Event:
    """The typed event a logged payload (``to_dict()``) came from; unknown fields are ignored,
    missing optional ones take their defaults. ``ValueError`` for an unknown type."""
    cls = _BY_TYPE.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown run event type {data.get('type')!r}")
    kwargs = {f.name: _parse(f.type, data[f.name]) for f in fields(cls) if f.name in data}
    event = cls(**kwargs)
    return event  # type: ignore[return-value]
