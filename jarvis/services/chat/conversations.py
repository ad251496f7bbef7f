"""Conversations of the signed-in user: list, create, open, rename, switch model, delete, and
the history of their turns (each turn is an agent run, see :mod:`jarvis.services.chat.runs`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from jarvis.clock import Clock
from jarvis.db.tables import Conversation, Message
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.factory import ProviderChoice
from jarvis.llm.models import CHAT_PROVIDERS, default_model
from jarvis.llm.offline import OFFLINE
from jarvis.services.chat.listing import group_by_date
from jarvis.services.chat.ports import ProviderSource
from jarvis.services.chat.recovery import RunRecovery
from jarvis.services.chat.views import ChatOverview, ConversationView, ToolCallView, TurnView
from jarvis.services.usage.rules import zone
from jarvis.validation import clean_line

MAX_TITLE_CHARS = 120
#: A title may be made from a whole message (the first one names a new chat).
MAX_TITLE_SOURCE_CHARS = 20_000
DEFAULT_TITLE = "New chat"
#: Conversations the chat page lists at first (and adds per "Show more").
LIST_PAGE = 30
MAX_QUERY_CHARS = 200


class ConversationService:
    """The user's conversations and their turns."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        providers: ProviderSource,
        recovery: RunRecovery,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._providers = providers
        self._recovery = recovery

    def create(
        self,
        principal: Principal,
        *,
        provider: str,
        model: str,
        title: str | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> ConversationView:
        """Start a conversation using ``provider`` / ``model``: empty, or holding ``history``
        (``(role, text)``, ``user`` / ``assistant``, oldest first: earlier turns an API client
        sends along, which the next run reads as its context)."""
        provider, model = check_model(provider, model)
        now = self._clock.now()
        with self._uow(principal) as uow:
            row = uow.conversations.add(
                Conversation(
                    id=uuid.uuid4(),
                    user_id=principal.user_id,
                    title=clean_title(title) if title else DEFAULT_TITLE,
                    provider=provider,
                    model=model,
                    created_at=now,
                    updated_at=now,
                )
            )
            for age, (role, content) in enumerate(reversed(history), start=1):
                if role not in ("user", "assistant"):
                    raise ValidationError("A message is from a user or an assistant.", field="role")
                uow.messages.add(
                    Message(
                        id=uuid.uuid4(),
                        conversation_id=row.id,
                        user_id=principal.user_id,
                        role=role,
                        content=content,
                        # Before the conversation's first run, in order.
                        created_at=now - timedelta(microseconds=age),
                    )
                )
            view = conversation_view(row)
            uow.commit()
        return view

    def create_default(
        self,
        principal: Principal,
        *,
        provider: str = OFFLINE,
        model: str | None = None,
        title: str | None = None,
    ) -> ConversationView:
        """:meth:`create`, with the provider's default model when none is named."""
        return self.create(
            principal, provider=provider, model=model or default_model(provider), title=title
        )

    def change(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        *,
        title: str | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> ConversationView:
        """Rename and / or switch the provider or model (what is not given stays)."""
        view = self.get(principal, conversation_id)
        if title is not None:
            view = self.rename(principal, conversation_id, title)
        if provider is not None or model is not None:
            chosen = provider or view.provider or OFFLINE
            view = self.set_model(
                principal, conversation_id, chosen, model or default_model(chosen)
            )
        return view

    def with_history(
        self, principal: Principal, conversation_id: uuid.UUID
    ) -> tuple[ConversationView, list[TurnView]]:
        """The conversation and its turns."""
        return self.get(principal, conversation_id), self.history(principal, conversation_id)

    def get(self, principal: Principal, conversation_id: uuid.UUID) -> ConversationView:
        """One conversation of the user (:class:`NotFoundError` for another user's)."""
        with self._uow(principal) as uow:
            return conversation_view(load_conversation(uow, conversation_id))

    def rename(
        self, principal: Principal, conversation_id: uuid.UUID, title: str
    ) -> ConversationView:
        """Give a conversation a new title (1-120 characters)."""
        clean = clean_title(title)
        with self._uow(principal) as uow:
            row = load_conversation(uow, conversation_id)
            row.title = clean
            uow.flush()
            view = conversation_view(row)
            uow.commit()
        return view

    def set_model(
        self, principal: Principal, conversation_id: uuid.UUID, provider: str, model: str
    ) -> ConversationView:
        """Switch the provider / model the next turns of a conversation use."""
        provider, model = check_model(provider, model)
        with self._uow(principal) as uow:
            row = load_conversation(uow, conversation_id)
            row.provider, row.model = provider, model
            uow.flush()
            view = conversation_view(row)
            uow.commit()
        return view

    def delete(self, principal: Principal, conversation_id: uuid.UUID) -> None:
        """Delete a conversation with its runs, messages and tool calls."""
        with self._uow(principal) as uow:
            if not uow.conversations.delete(conversation_id):
                raise NotFoundError("That conversation does not exist.")
            uow.commit()

    def history(self, principal: Principal, conversation_id: uuid.UUID) -> list[TurnView]:
        """The turns of a conversation, oldest first, with their tool steps and costs."""
        with self._uow(principal) as uow:
            load_conversation(uow, conversation_id)
            runs = uow.runs.for_conversation(conversation_id)
            messages = uow.messages.for_conversation(conversation_id)
            calls = uow.tool_calls.for_runs([r.id for r in runs])
            by_run: dict[uuid.UUID | None, list[Message]] = {}
            for m in messages:
                by_run.setdefault(m.run_id, []).append(m)
            calls_by_run: dict[uuid.UUID, list[ToolCallView]] = {}
            for c in calls:
                calls_by_run.setdefault(c.run_id, []).append(
                    ToolCallView(
                        c.id, c.tool_id, dict(c.arguments or {}), c.result, c.status, c.latency_ms
                    )
                )
            turns = []
            for run in runs:
                msgs = by_run.get(run.id, [])
                turns.append(
                    TurnView(
                        run_id=run.id,
                        user_text="\n\n".join(m.content for m in msgs if m.role == "user"),
                        answer="\n\n".join(m.content for m in msgs if m.role == "assistant"),
                        status=run.status,
                        provider=run.provider,
                        model=run.model,
                        total_tokens=int(run.total_tokens or 0),
                        cost_usd=run.total_cost,
                        unpriced=bool(run.unpriced),
                        error=run.error,
                        tool_calls=calls_by_run.get(run.id, []),
                    )
                )
            return turns

    def overview(
        self,
        principal: Principal,
        conversation_id: uuid.UUID | None = None,
        *,
        query: str = "",
        limit: int = LIST_PAGE,
    ) -> ChatOverview:
        """The chat page's data in one call: the first ``limit`` conversations whose title
        contains ``query``, grouped by date, and the open one (an unknown or deleted id opens
        nothing)."""
        query = clean_query(query)
        listed = self.list(principal, limit + 1, query=query)
        conversations, has_more = listed[:limit], len(listed) > limit
        current = next((c for c in conversations if c.id == conversation_id), None)
        if current is None and conversation_id is not None:
            try:
                current = self.get(principal, conversation_id)
            except NotFoundError:
                current = None
        turns = self.history(principal, current.id) if current is not None else []
        # A run whose process died soon before a restart was too fresh for start-up recovery,
        # and no heartbeat thread may be alive to fail it later: do it when it is looked at.
        running = any(t.status == "running" for t in turns)
        if current is not None and running and self._recovery.recover_stale_runs_safely():
            turns = self.history(principal, current.id)
        active = next((t.run_id for t in reversed(turns) if t.status == "running"), None)
        with self._uow(principal) as uow:
            busy = frozenset(uow.run_log.running_conversations(principal.user_id))
            tz = zone(uow.usage.timezone_of(principal.user_id))
        conversations = [
            c if c.running == (c.id in busy) else replace(c, running=c.id in busy)
            for c in conversations
        ]
        return ChatOverview(
            conversations,
            current,
            turns,
            self.provider_choices(principal),
            active_run_id=active,
            running=busy,
            groups=group_by_date(conversations, self._clock.now(), tz),
            query=query,
            has_more=has_more,
        )

    def provider_choices(self, principal: Principal) -> list[ProviderChoice]:
        """The providers (and their models) this user can use; offline is always there."""
        return self._providers.usable_providers(principal)

    # Kept last: a method named ``list`` hides the builtin from annotations below it.
    def list(
        self, principal: Principal, limit: int = 100, *, query: str = "", offset: int = 0
    ) -> list[ConversationView]:
        """The user's conversations, most recently active first: ``limit`` from ``offset``, only
        those whose title contains ``query`` (any case) when one is given; each says whether
        an answer is in progress in it (``running``)."""
        query = clean_query(query)
        with self._uow(principal) as uow:
            rows = uow.conversations.search(
                principal.user_id, query, limit=max(limit, 0), offset=max(offset, 0)
            )
            busy = uow.run_log.running_conversations(principal.user_id) if rows else set()
            return [conversation_view(c, running=c.id in busy) for c in rows]


# -- helpers shared with the run service --------------------------------------------------------


def load_conversation(uow: UnitOfWork, conversation_id: uuid.UUID) -> Conversation:
    """The conversation row (the user's only, by row-level security), or :class:`NotFoundError`."""
    row = uow.conversations.get(conversation_id)
    if row is None:
        raise NotFoundError("That conversation does not exist.")
    return row


def conversation_view(row: Conversation, *, running: bool = False) -> ConversationView:
    return ConversationView(
        row.id, row.title, row.provider, row.model, row.created_at, row.updated_at, running
    )


def clean_query(query: str) -> str:
    """A title search on one line (at most :data:`MAX_QUERY_CHARS`; "" for none)."""
    return clean_line(
        query, field="query", label="search", max_chars=MAX_QUERY_CHARS, required=False
    )


def clean_title(title: str) -> str:
    """A title on one line, 1-120 characters (longer ones are cut with an ellipsis); text
    that is not clean (NUL, control characters, lone surrogates) is refused, as is anything
    longer than a message."""
    clean = clean_line(title, field="title", max_chars=MAX_TITLE_SOURCE_CHARS)
    return clean if len(clean) <= MAX_TITLE_CHARS else clean[: MAX_TITLE_CHARS - 1] + "…"


def check_model(provider: str, model: str) -> tuple[str, str]:
    """``provider`` (one Jarvis can chat with) and ``model`` stripped, or a
    :class:`ValidationError`: a conversation never names a provider no turn could use."""
    provider = clean_line(provider, field="provider", max_chars=32, required=False)
    model = clean_line(model, field="model", max_chars=200, required=False)
    if not provider:
        raise ValidationError("Choose a provider.", field="provider")
    if provider not in CHAT_PROVIDERS:
        raise ValidationError(
            "Choose a provider: " + ", ".join(CHAT_PROVIDERS) + ".", field="provider"
        )
    if not model:
        raise ValidationError("Choose a model.", field="model")
    return provider, model
