"""Helpers of the chat / orchestrator tests: users, a chat service on a fake provider, rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from jarvis.bootstrap import Services
from jarvis.db.repositories.users import UserRepository
from jarvis.db.tables import AgentRun, Message, ToolCall, User
from jarvis.identity import Principal
from jarvis.llm.base import FakeProvider, LLMProvider
from jarvis.services import events as ev
from jarvis.services.orchestrator import ChatService
from jarvis.services.rate_limits import RateLimiter
from jarvis.tools.builtin import BuiltinToolServices


class StaticProviders:
    """Every provider name resolves to the same (fake) provider."""

    def __init__(self, provider: LLMProvider) -> None:
        self.provider = provider
        self.asked: list[str] = []

    def for_user(self, _principal: Principal, provider: str) -> LLMProvider:
        self.asked.append(provider)
        return self.provider


def make_user(
    services: Services, *, budget: Decimal | None = None, role: str = "user"
) -> Principal:
    """A user created in the test's transaction (auth scope, like registration)."""
    uid = uuid.uuid4()
    email = f"chat-{uid.hex[:10]}@example.com"
    with services.uow(scope="auth") as uow:
        UserRepository(uow.session).add(
            User(
                id=uid,
                email=email,
                password_hash="x",
                display_name="Chat tester",
                role=role,
                monthly_budget_usd=budget,
            )
        )
        uow.commit()
    return Principal(user_id=uid, email=email, role=role, display_name="Chat tester")  # type: ignore[arg-type]


def make_chat(
    services: Services,
    provider: LLMProvider,
    *,
    heartbeat_seconds: float | None = None,
    **settings: Any,
) -> ChatService:
    """A ChatService wired like build_services', on ``provider`` and settings overrides."""
    return ChatService(
        services.uow,
        services.clock,
        services.settings.model_copy(update=settings),
        providers=StaticProviders(provider),
        tools=services.tools,
        permissions=services.permissions,
        pricing=services.pricing,
        usage=services.usage,
        memory=services.memory,
        rate_limiter=RateLimiter(services.uow, services.clock),
        tool_services=BuiltinToolServices(
            services.clock,
            services.memory,
            services.knowledge_graph,
            services.usage,
            services.secrets,
        ),
        heartbeat_seconds=heartbeat_seconds,
    )


def run_all(
    chat: ChatService, principal: Principal, conversation_id: uuid.UUID, text: str
) -> list[ev.RunEvent]:
    return list(chat.run(principal, conversation_id, text))


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
