"""Server-side runs: admission, the event log, cancel requests and process heartbeats (0011).

The hot path of a chat turn is three single statements (start, finish, and an append now and
then), each one of the SQL functions of migration 0011; they set the row-level-security user
themselves, so they work the same in a unit of work in autocommit mode (one round trip each)
and inside an ordinary transaction (tests).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Session

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Admitted:
    """A run admitted: what its engine needs, read in the admission's own statement."""

    provider: str
    model: str
    started_at: datetime
    history: list[tuple[str, str]]
    permissions: dict[str, bool]
    secret_providers: frozenset[str]
    reserved: Decimal
    budget: Decimal
    spent: Decimal
    #: Whether the user has any memory with a vector (none: memory retrieval is skipped).
    has_memories: bool = True


@dataclass(frozen=True, slots=True)
class RunAdmission:
    """What ``jarvis_start_run`` answered: ``outcome`` ``ok`` (with ``admitted``) or why the
    run was refused (``no_conversation``, ``conversation_busy``, ``rate_limited`` with
    ``retry_after``, ``busy`` with ``running``, ``budget`` with the amounts)."""

    outcome: str
    admitted: Admitted | None = None
    retry_after: float = 0.0
    running: int = 0
    budget: Decimal = Decimal(0)
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)


def _admission(data: JsonObject) -> RunAdmission:
    outcome = str(data.get("outcome"))
    budget, spent, reserved = (
        Decimal(str(data.get(k) or 0)) for k in ("budget", "spent", "reserved")
    )
    if outcome != "ok":
        return RunAdmission(
            outcome,
            retry_after=float(data.get("retry_after") or 0),
            running=int(data.get("running") or 0),
            budget=budget,
            spent=spent,
            reserved=reserved,
        )
    admitted = Admitted(
        provider=str(data["provider"]),
        model=str(data["model"]),
        started_at=datetime.fromisoformat(str(data["started_at"])),
        history=[(str(role), str(content)) for role, content in data["history"]],
        permissions={str(k): bool(v) for k, v in dict(data["permissions"]).items()},
        secret_providers=frozenset(str(p) for p in data["secret_providers"]),
        reserved=reserved,
        budget=budget,
        spent=spent,
        has_memories=bool(data.get("memories", True)),
    )
    return RunAdmission(outcome, admitted, budget=budget, spent=spent, reserved=reserved)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One row of a run's event log."""

    seq: int
    type: str
    payload: JsonObject


@dataclass(frozen=True, slots=True)
class MonthBudget:
    budget: Decimal
    source: str
    spent: Decimal
    unpriced_runs: int
    reserved: Decimal


@dataclass(frozen=True, slots=True)
class RunFinish:
    """Everything that closes a run, written in one statement with its last events."""

    user_id: uuid.UUID
    run_id: uuid.UUID
    status: str
    error: str
    answer: str
    message_id: uuid.UUID
    answer_at: datetime
    now: datetime
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost: Decimal | None
    price_version: int | None
    unpriced: bool
    estimated: bool


def _events_json(events: Sequence[LoggedEvent]) -> str:
    return json.dumps(
        [{"seq": e.seq, "type": e.type, "payload": e.payload} for e in events],
        separators=(",", ":"),
        ensure_ascii=False,
    )


_START = text(
    "SELECT jarvis_start_run(:user_id, :role, :conversation_id, :run_id, :message_id, :worker_id,"
    " :text, :title, :default_title, :now, :max_running, :per_minute, :cost_cap,"
    " :default_budget, :history, :stale_before, :stale_reason)"
)
_APPEND = text("SELECT jarvis_append_run_events(:user_id, :run_id, CAST(:events AS jsonb))")
_FINISH = text(
    "SELECT jarvis_finish_run(:user_id, :run_id, :status, :error, :answer, :message_id,"
    " :answer_at, :now, :input, :output, :cache_read, :cache_write, :cost, :price_version,"
    " :unpriced, :estimated, CAST(:events AS jsonb))"
)
_READ = text("SELECT seq, type, payload FROM jarvis_read_run_events(:user_id, :run_id, :after, :n)")
_STATUS = text("SELECT jarvis_run_status(:user_id, :run_id)")
# A follower's poll: the events after its cursor and the run's status, one round trip, one
# snapshot (both functions are STABLE: they see the calling statement's snapshot), so "no new
# event and the run is over" is a consistent answer. The status row has no sequence number.
_READ_WITH_STATUS = text(
    "SELECT seq, type, payload FROM jarvis_read_run_events(:user_id, :run_id, :after, :n)"
    " UNION ALL SELECT NULL, jarvis_run_status(:user_id, :run_id), NULL"
)
_CANCELLED = text("SELECT jarvis_cancel_requested(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))
)


class RunLogRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- the hot path (one statement each) ----------------------------------------------------

    def start(
        self,
        *,
        user_id: uuid.UUID,
        role: str,
        conversation_id: uuid.UUID,
        run_id: uuid.UUID,
        message_id: uuid.UUID,
        worker_id: uuid.UUID | None,
        text_: str,
        title: str,
        default_title: str,
        now: datetime,
        max_running: int,
        per_minute: int,
        cost_cap: Decimal,
        default_budget: Decimal,
        history: int,
        stale_before: datetime,
        stale_reason: str,
    ) -> RunAdmission:
        """Admit a run atomically (every guard, its rows, its budget reservation)."""
        result: JsonObject = self.session.execute(
            _START,
            {
                "user_id": user_id,
                "role": role,
                "conversation_id": conversation_id,
                "run_id": run_id,
                "message_id": message_id,
                "worker_id": worker_id,
                "text": text_,
                "title": title,
                "default_title": default_title,
                "now": now,
                "max_running": max_running,
                "per_minute": per_minute,
                "cost_cap": cost_cap,
                "default_budget": default_budget,
                "history": history,
                "stale_before": stale_before,
                "stale_reason": stale_reason,
            },
        ).scalar_one()
        return _admission(result)

    def append(self, user_id: uuid.UUID, run_id: uuid.UUID, events: Sequence[LoggedEvent]) -> bool:
        """Append events (and notify followers); False when the run is no longer running."""
        return bool(
            self.session.execute(
                _APPEND, {"user_id": user_id, "run_id": run_id, "events": _events_json(events)}
            ).scalar_one()
        )

    def finish(self, done: RunFinish, events: Sequence[LoggedEvent]) -> bool:
        """Close the run (answer, totals, cost, rollups, last events); False when it was
        closed already."""
        return bool(
            self.session.execute(
                _FINISH,
                {
                    "user_id": done.user_id,
                    "run_id": done.run_id,
                    "status": done.status,
                    "error": done.error,
                    "answer": done.answer,
                    "message_id": done.message_id,
                    "answer_at": done.answer_at,
                    "now": done.now,
                    "input": done.input_tokens,
                    "output": done.output_tokens,
                    "cache_read": done.cache_read_tokens,
                    "cache_write": done.cache_write_tokens,
                    "cost": done.cost,
                    "price_version": done.price_version,
                    "unpriced": done.unpriced,
                    "estimated": done.estimated,
                    "events": _events_json(events),
                },
            ).scalar_one()
        )

    def read(
        self, user_id: uuid.UUID, run_id: uuid.UUID, after: int = 0, limit: int = 1000
    ) -> list[LoggedEvent]:
        """The run's events after ``after``, in order (at most ``limit``)."""
        rows = self.session.execute(
            _READ, {"user_id": user_id, "run_id": run_id, "after": after, "n": limit}
        )
        return [LoggedEvent(int(r.seq), str(r.type), dict(r.payload)) for r in rows]

    def read_with_status(
        self, user_id: uuid.UUID, run_id: uuid.UUID, after: int = 0, limit: int = 1000
    ) -> tuple[list[LoggedEvent], str | None]:
        """:meth:`read` and :meth:`status` in one statement (a follower's poll)."""
        events: list[LoggedEvent] = []
        status: str | None = None
        for r in self.session.execute(
            _READ_WITH_STATUS, {"user_id": user_id, "run_id": run_id, "after": after, "n": limit}
        ):
            if r.seq is None:
                status = None if r.type is None else str(r.type)
            else:
                events.append(LoggedEvent(int(r.seq), str(r.type), dict(r.payload)))
        events.sort(key=lambda e: e.seq)
        return events, status

    def status(self, user_id: uuid.UUID, run_id: uuid.UUID) -> str | None:
        """The run's status (None when it is not the user's): one statement."""
        value = self.session.execute(_STATUS, {"user_id": user_id, "run_id": run_id}).scalar()
        return None if value is None else str(value)

    # -- budgets ------------------------------------------------------------------------------

    def month_budget(self, user_id: uuid.UUID, default: Decimal, now: datetime) -> MonthBudget:
        """Which budget applies to the user this (local) month, what is spent and reserved."""
        row = self.session.execute(
            text("SELECT * FROM jarvis_month_budget(:u, :d, :now)"),
            {"u": user_id, "d": default, "now": now},
        ).one()
        return MonthBudget(
            budget=Decimal(row.budget),
            source=str(row.source),
            spent=Decimal(row.spent),
            unpriced_runs=int(row.unpriced_runs),
            reserved=Decimal(row.reserved),
        )

    # -- cancel ---------------------------------------------------------------------------------

    def request_cancel(self, run_id: uuid.UUID, now: datetime) -> bool:
        """Record a Stop on the user's running run (and wake the process running it)."""
        row = self.session.execute(
            text(
                "UPDATE agent_runs SET cancel_requested_at = coalesce(cancel_requested_at, :now)"
                " WHERE id = :id AND status = 'running' RETURNING id"
            ),
            {"id": run_id, "now": now},
        ).first()
        if row is None:
            return False
        self.session.execute(
            text("SELECT pg_notify('jarvis_run_cancel', :id)"), {"id": str(run_id)}
        )
        return True

    def cancel_requested(self, run_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these runs (any user's: this process runs them) were asked to stop."""
        if not run_ids:
            return set()
        return {
            uuid.UUID(str(v))
            for v in self.session.execute(_CANCELLED, {"ids": list(run_ids)}).scalars()
        }

    # -- reading runs -------------------------------------------------------------------------

    def running_in(self, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The conversation's running run, if any."""
        value = self.session.execute(
            text(
                "SELECT id FROM agent_runs WHERE conversation_id = :c AND status = 'running'"
                " ORDER BY started_at DESC LIMIT 1"
            ),
            {"c": conversation_id},
        ).scalar()
        return None if value is None else uuid.UUID(str(value))

    def running_conversations(self, user_id: uuid.UUID) -> set[uuid.UUID]:
        """Conversations of the user with a run in progress (the sidebar marks them)."""
        return {
            uuid.UUID(str(v))
            for v in self.session.execute(
                text(
                    "SELECT DISTINCT conversation_id FROM agent_runs"
                    " WHERE user_id = :u AND status = 'running' AND conversation_id IS NOT NULL"
                ),
                {"u": user_id},
            ).scalars()
        }

    # -- processes ------------------------------------------------------------------------------

    def beat(self, worker_id: uuid.UUID, host: str, pid: int) -> None:
        """Register / refresh this process's heartbeat."""
        self.session.execute(
            text(
                "INSERT INTO run_workers (id, host, pid) VALUES (:id, :host, :pid)"
                " ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()"
            ),
            {"id": worker_id, "host": host[:255], "pid": pid},
        )

    def retire(self, worker_id: uuid.UUID) -> None:
        """Forget this process (a clean shutdown)."""
        self.session.execute(text("DELETE FROM run_workers WHERE id = :id"), {"id": worker_id})
