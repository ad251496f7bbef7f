"""Helpers for usage tests: users with a time zone, finished runs recorded like the chat does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from jarvis.bootstrap import Services
from jarvis.db.tables import AgentRun, ToolCall
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal
from tests.accounts_support import insert_user


def make_user(
    uow: UnitOfWorkFactory,
    email: str,
    *,
    tz: str = "UTC",
    role: str = "user",
    budget: Decimal | None = None,
) -> Principal:
    return insert_user(uow, email, role=role, budget=budget, timezone=tz)


def finish_run(
    services: Services,
    who: Principal,
    provider: str,
    model: str,
    started_at: datetime,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    status: str = "completed",
    tools: tuple[tuple[str, str, int | None], ...] = (),
) -> uuid.UUID:
    """Write a run and its tool calls, then close it the way the chat engine does."""
    with services.uow(who) as w:
        run = AgentRun(
            id=uuid.uuid4(),
            user_id=who.user_id,
            provider=provider,
            model=model,
            status="running",
            started_at=started_at,
        )
        w.session.add(run)
        w.session.flush()
        for i, (tool_id, tool_status, latency) in enumerate(tools):
            w.session.add(
                ToolCall(
                    id=uuid.uuid4(),
                    run_id=run.id,
                    user_id=who.user_id,
                    tool_id=tool_id,
                    arguments={},
                    status=tool_status,
                    latency_ms=latency,
                    created_at=started_at + timedelta(seconds=i + 1),
                )
            )
        w.session.flush()
        run.status = status
        run.input_tokens = input_tokens
        run.output_tokens = output_tokens
        run.cache_read_tokens = cache_read_tokens
        run.cache_write_tokens = cache_write_tokens
        run.finished_at = started_at + timedelta(minutes=1)
        services.run_recorder.on_run_finished(w, run)
        w.commit()
        return run.id
