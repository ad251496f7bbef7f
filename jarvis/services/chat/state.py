"""The mutable state of one agent run (local to the run; the services themselves are shared),
and the small helpers the run's parts share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from opentelemetry.context import Context

from jarvis.identity import Principal
from jarvis.llm import base as llm
from jarvis.services.chat import events as ev


@dataclass
class RunState:
    """Everything the engine needs to drive one run (inputs first), and its progress.

    Built by :class:`jarvis.services.chat.runs.RunService` once the run row and the user's
    message are committed; the engine reads the inputs and updates the progress fields.
    """

    principal: Principal
    run_id: uuid.UUID
    conversation_id: uuid.UUID
    provider: str
    model: str
    #: The user's message of this turn.
    text: str
    #: The first event of the run (yielded by the engine, inside its cancellation handling).
    started: ev.RunStarted
    #: The latest timestamp written for this run (rows of a run are strictly ordered).
    last_stamp: datetime
    #: Earlier turns of the conversation as ``(role, content)``, oldest first.
    history: list[tuple[str, str]] = field(default_factory=list)
    #: The user's tool permissions (tool id -> granted) and secret providers at admission.
    permissions: dict[str, bool] = field(default_factory=dict)
    secret_providers: frozenset[str] = frozenset()
    #: What admission reserved of the month's budget: the run may spend at most this.
    reserved_usd: Decimal | None = None
    #: Whether the user had any memory at admission (False: no memory retrieval, no embedding).
    has_memories: bool = True
    #: ``time.monotonic()`` by which the whole run must end.
    deadline: float = float("inf")
    # -- progress --
    usage: llm.Usage = field(default_factory=llm.Usage)
    cost: Decimal | None = Decimal(0)
    price_version: int | None = None
    unpriced: bool = False
    steps: int = 0
    answer: list[str] = field(default_factory=list)
    trace_context: Context | None = None
    #: The usage the last ``usage`` event reported (None: none yet).
    priced: llm.Usage | None = None
    #: Some tokens were estimated from text (a model call stopped before reporting usage).
    estimated: bool = False
    #: Why the last model call ended (``stop``, ``length``, ...), as the provider said.
    finish_reason: str = "stop"
    #: The :mod:`jarvis.errors` class name that failed the run ("" when none or unexpected).
    error_type: str = ""
    #: How many prompt messages earlier ``model_call`` events hold already.
    prompt_logged: int = 0

    def next_stamp(self, now: datetime) -> datetime:
        """Strictly increasing timestamps within a run (row order survives a frozen clock)."""
        self.last_stamp = max(now, self.last_stamp + timedelta(microseconds=1))
        return self.last_stamp


class RunStop(Exception):  # noqa: N818 - internal control flow, never escapes the run
    """Ends the run early with ``status`` (``failed`` / ``cancelled``) and ``reason``."""

    def __init__(self, status: str, reason: str, error_type: str = "LimitExceededError") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        #: The error class a caller may report it as (``BudgetExceededError``, ...).
        self.error_type = error_type


def money(value: Decimal | float) -> str:
    """A dollar amount for messages: four decimals under $1, else two."""
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    return f"{amount:.4f}" if amount < 1 else f"{amount:.2f}"
