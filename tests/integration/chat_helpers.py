"""Helpers of the chat tests: users, chat services on a fake provider, rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from jarvis.bootstrap import Services, build_services
from jarvis.db.tables import AgentRun, Message, ToolCall
from jarvis.identity import Principal
from jarvis.llm.base import FakeProvider, LLMProvider
from jarvis.llm.factory import ProviderChoice
from jarvis.services.chat import events as ev
from tests.factories import insert_user


class StaticProviders:
    """Every provider name resolves to the same (fake) provider."""

    def __init__(self, provider: LLMProvider) -> None:
        self.provider = provider
        self.asked: list[str] = []

    def for_user(self, _principal: Principal, provider: str) -> LLMProvider:
        self.asked.append(provider)
        return self.provider

    def usable_providers(self, _principal: Principal) -> list[ProviderChoice]:
        return []


def make_user(
    services: Services, *, budget: Decimal | None = None, role: str = "user"
) -> Principal:
    """A user created in the test's transaction."""
    uid = uuid.uuid4()
    email = f"chat-{uid.hex[:10]}@example.com"
    return insert_user(
        services.uow, email, role=role, budget=budget, display_name="Chat tester", user_id=uid
    )


def make_chat(
    services: Services,
    provider: LLMProvider,
    *,
    heartbeat_seconds: float | None = None,
    **settings: Any,
) -> Services:
    """Services built by ``build_services`` on ``services``' database, clock, tools and embedder,
    with every provider answering from ``provider`` and ``settings`` overridden (no start-up
    recovery; a heartbeat thread only with ``heartbeat_seconds``)."""
    return build_services(
        services.settings.model_copy(update=settings),
        engine=services.engine,
        uow=services.uow,
        clock=services.clock,
        tools=services.tools,
        embedder=services.embedder,
        providers=StaticProviders(provider),
        recover_runs=False,
        run_heartbeat_seconds=heartbeat_seconds,
    )


def run_all(
    chat: Services, principal: Principal, conversation_id: uuid.UUID, text: str
) -> list[ev.RunEvent]:
    return list(chat.runs.run(principal, conversation_id, text))


def types(events: Iterable[ev.RunEvent]) -> list[str]:
    return [e.type for e in events]


def rows(
    services: Services, principal: Principal, run_id: uuid.UUID
) -> tuple[AgentRun, list[Message], list[ToolCall]]:
    """The run row, its messages and its tool calls as the database holds them now."""
    with services.uow(principal) as uow:
        s = uow.session
        run = s.get(AgentRun, run_id)
        assert run is not None
        msgs = list(
            s.scalars(select(Message).where(Message.run_id == run_id).order_by(Message.created_at))
        )
        calls = list(
            s.scalars(
                select(ToolCall).where(ToolCall.run_id == run_id).order_by(ToolCall.created_at)
            )
        )
        s.expunge_all()
        return run, msgs, calls


def fake(handler: Any) -> FakeProvider:
    return FakeProvider(handler)
