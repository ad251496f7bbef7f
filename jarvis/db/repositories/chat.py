"""Conversations, agent runs, messages and tool calls (the chat capability's SQL).

Rows get client-side ids; every query runs as the signed-in user (row-level security), and the
explicit ``user_id`` filters only help the planner use the ``(user_id, ...)`` indexes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from jarvis.db.tables import AgentRun, Conversation, Message, ToolCall
from jarvis.validation import storable_json

# Advisory-lock namespace of the per-user run guard (pg_advisory_xact_lock(int, int)).
RUN_GUARD_LOCK = 7261007


class ConversationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_user(self, user_id: uuid.UUID, limit: int = 100) -> list[Conversation]:
        return list(
            self.session.scalars(
                select(Conversation)
                .where(Conversation.user_id == user_id)
                .order_by(Conversation.updated_at.desc(), Conversation.id)
                .limit(limit)
            )
        )

    def search(
        self, user_id: uuid.UUID, query: str = "", *, limit: int = 30, offset: int = 0
    ) -> list[Conversation]:
        """The user's conversations whose title contains ``query`` (any case; all when empty),
        most recently active first, ``limit`` from ``offset``."""
        stmt = select(Conversation).where(Conversation.user_id == user_id)
        if query:
            pattern = (
                "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            stmt = stmt.where(Conversation.title.ilike(pattern, escape="\\"))
        return list(
            self.session.scalars(
                stmt.order_by(Conversation.updated_at.desc(), Conversation.id)
                .limit(limit)
                .offset(offset)
            )
        )

    def get(self, conversation_id: uuid.UUID) -> Conversation | None:
        return self.session.get(Conversation, conversation_id)

    def add(self, conversation: Conversation) -> Conversation:
        self.session.add(conversation)
        self.session.flush()
        return conversation

    def touch(self, conversation_id: uuid.UUID, when: datetime) -> None:
        """Mark the conversation active at ``when`` (it sorts first in the list)."""
        self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(updated_at=when)
            .execution_options(synchronize_session=False)
        )

    def delete(self, conversation_id: uuid.UUID) -> int:
        result = self.session.execute(
            delete(Conversation).where(Conversation.id == conversation_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class RunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def lock_user(self, user_id: uuid.UUID) -> None:
        """Serialise run starts of one user until the transaction ends."""
        self.session.execute(
            text("select pg_advisory_xact_lock(:ns, hashtext(:uid))"),
            {"ns": RUN_GUARD_LOCK, "uid": str(user_id)},
        )

    def count_running(self, user_id: uuid.UUID) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(AgentRun)
                .where(AgentRun.user_id == user_id, AgentRun.status == "running")
            )
            or 0
        )

    def fail_stale(self, stale_before: datetime, reason: str) -> int:
        """Mark every user's ``running`` runs without progress since ``stale_before`` failed
        (the SECURITY DEFINER function of migrations 0006 and 0007, which also adds them
        to the usage rollups)."""
        return int(
            self.session.scalar(
                text("select jarvis_fail_stale_runs(:before, :reason)"),
                {"before": stale_before, "reason": reason},
            )
            or 0
        )

    def add(self, run: AgentRun) -> AgentRun:
        self.session.add(run)
        self.session.flush()
        return run

    def get(self, run_id: uuid.UUID) -> AgentRun | None:
        return self.session.get(AgentRun, run_id)

    def get_for_update(self, run_id: uuid.UUID) -> AgentRun | None:
        """The run, row-locked until the transaction ends (closing races stale recovery)."""
        return self.session.scalar(select(AgentRun).where(AgentRun.id == run_id).with_for_update())

    def heartbeat(self, run_id: uuid.UUID, when: datetime) -> None:
        self.session.execute(
            update(AgentRun)
            .where(AgentRun.id == run_id, AgentRun.status == "running")
            .values(heartbeat_at=when)
        )

    def for_conversation(self, conversation_id: uuid.UUID) -> list[AgentRun]:
        return list(
            self.session.scalars(
                select(AgentRun)
                .where(AgentRun.conversation_id == conversation_id)
                .order_by(AgentRun.started_at, AgentRun.id)
            )
        )


class MessageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, message: Message) -> Message:
        self.session.add(message)
        self.session.flush()
        return message

    def for_conversation(self, conversation_id: uuid.UUID, limit: int = 500) -> list[Message]:
        """The latest ``limit`` messages, oldest first."""
        rows = list(
            self.session.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.created_at.desc(), Message.id)
                .limit(limit)
            )
        )
        rows.reverse()
        return rows

    def for_run(self, run_id: uuid.UUID) -> list[Message]:
        """The run's messages (the user's and the answer), oldest first."""
        return list(
            self.session.scalars(
                select(Message)
                .where(Message.run_id == run_id)
                .order_by(Message.created_at, Message.id)
            )
        )


class ToolCallRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, call: ToolCall) -> ToolCall:
        self.session.add(call)
        self.session.flush()
        return call

    def for_runs(self, run_ids: Sequence[uuid.UUID]) -> list[ToolCall]:
        if not run_ids:
            return []
        return list(
            self.session.scalars(
                select(ToolCall)
                .where(ToolCall.run_id.in_(list(run_ids)))
                .order_by(ToolCall.created_at, ToolCall.id)
            )
        )

    def for_run(self, run_id: uuid.UUID) -> list[ToolCall]:
        return self.for_runs([run_id])


def json_safe(value: Any) -> Any:
    """Anything a tool returned, as plain JSON types PostgreSQL can store (for the jsonb
    columns): no NUL, no lone surrogate, no NaN, bounded nesting (never refused)."""
    return storable_json(value)
