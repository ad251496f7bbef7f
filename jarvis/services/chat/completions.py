"""Chat completions in OpenAI's terms, over the ordinary run engine (the HTTP API's
OpenAI-compatible ``/chat/completions`` and ``/models``).

A request names a model as ``provider/model`` (``openai/gpt-4o-mini``, ``offline/...``; a bare
model or provider name works when it is unambiguous) and sends the whole conversation. Each
request becomes a new Jarvis conversation holding the earlier messages (the last
:data:`~jarvis.services.chat.runs.MAX_HISTORY_MESSAGES`, what a run reads as context) and one run
for the last user message: the same admission (rate, concurrency, budget), tools and permissions,
usage recording and audit as a turn on the chat page. ``system`` / ``developer`` messages are
kept as the conversation's first message (Jarvis's own system prompt stays in charge).

A run that fails is raised as the :mod:`jarvis.errors` class that ended it, so the API can answer
with the right status.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from jarvis import errors
from jarvis.errors import ConflictError, JarvisError, NotFoundError, ValidationError
from jarvis.identity import Principal
from jarvis.llm.factory import ProviderChoice
from jarvis.llm.models import OPENAI_COMPATIBLE
from jarvis.services.chat import events as ev
from jarvis.services.chat.conversations import ConversationService
from jarvis.services.chat.ports import ProviderSource
from jarvis.services.chat.runs import MAX_HISTORY_MESSAGES, MAX_MESSAGE_CHARS, RunService
from jarvis.validation import clean_text

#: Longest earlier message kept (an assistant's long answer); the run reads ~24,000 characters.
MAX_HISTORY_CHARS = 100_000
SYSTEM_ROLES = frozenset({"system", "developer"})
INSTRUCTIONS_LEAD = "Instructions from the application calling Jarvis:\n\n"


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of a request: ``system`` / ``developer`` / ``user`` / ``assistant``
    (``tool`` messages are not kept: Jarvis runs its own tools)."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model the user can use, as ``/models`` lists it."""

    id: str
    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class CompletionUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class StartedCompletion:
    """A completion's run, admitted and running."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    model: str
    #: Unix seconds (OpenAI's ``created``).
    created: int


@dataclass(frozen=True, slots=True)
class CompletionDelta:
    """A piece of the answer as it is written."""

    text: str


@dataclass(frozen=True, slots=True)
class CompletionEnd:
    """The answer is complete: why the model stopped (``stop`` / ``length``) and the usage."""

    finish_reason: str
    usage: CompletionUsage


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished completion (the non-streaming answer)."""

    started: StartedCompletion
    text: str
    finish_reason: str
    usage: CompletionUsage


class CompletionService:
    """OpenAI-style completions and the model list, for the signed-in user."""

    def __init__(
        self, *, runs: RunService, conversations: ConversationService, providers: ProviderSource
    ) -> None:
        self._runs = runs
        self._conversations = conversations
        self._providers = providers

    def models(self, principal: Principal) -> list[ModelEntry]:
        """The models this user can use: offline always, others with the user's key."""
        return model_entries(self._providers.usable_providers(principal))

    def start(
        self, principal: Principal, model: str, messages: Sequence[ChatTurn]
    ) -> StartedCompletion:
        """Admit the run for the last user message, in a new conversation holding the earlier
        ones; returns at once. Raises :class:`NotFoundError` for a model the user cannot use,
        :class:`ValidationError` for messages without a last user message, and every refusal
        of :meth:`RunService.start` (:class:`errors.BudgetExceededError`, ...)."""
        choices = self._providers.usable_providers(principal)
        provider, model_name = resolve_model(choices, model)
        history, text = split_turns(messages)
        conversation = self._conversations.create(
            principal, provider=provider, model=model_name, history=history
        )
        started = self._runs.start(principal, conversation.id, text)
        return StartedCompletion(
            started.run_id,
            conversation.id,
            f"{started.provider}/{started.model}",
            int(time.time()),
        )

    async def stream(
        self, principal: Principal, started: StartedCompletion
    ) -> AsyncIterator[CompletionDelta | CompletionEnd]:
        """The answer's pieces as they are written, then its end; a run that fails raises its
        error (a :class:`JarvisError`), one that was stopped a :class:`ConflictError`."""
        usage = CompletionUsage()
        async for followed in self._runs.follow_async(principal, started.run_id):
            e = followed.event
            if isinstance(e, ev.TextDelta):
                if e.text:
                    yield CompletionDelta(e.text)
            elif isinstance(e, ev.UsageUpdate):
                # The prompt counts every input token, cached or not (OpenAI's prompt_tokens).
                usage = CompletionUsage(
                    e.total_tokens - e.output_tokens, e.output_tokens, e.total_tokens
                )
            elif isinstance(e, ev.RunCompleted):
                if usage.total_tokens != e.total_tokens:
                    usage = CompletionUsage(
                        max(0, e.total_tokens - usage.completion_tokens),
                        usage.completion_tokens,
                        e.total_tokens,
                    )
                yield CompletionEnd(e.finish_reason, usage)
                return
            elif isinstance(e, ev.RunFailed):
                raise failure(e.error_type, e.error)
            elif isinstance(e, ev.RunCancelled):
                raise ConflictError("The answer was stopped before it finished.")
        raise JarvisError("The answer ended without a result.")

    async def complete(self, principal: Principal, started: StartedCompletion) -> Completion:
        """Wait for the whole answer (errors as :meth:`stream`)."""
        parts: list[str] = []
        async for piece in self.stream(principal, started):
            if isinstance(piece, CompletionDelta):
                parts.append(piece.text)
            else:
                return Completion(started, "".join(parts), piece.finish_reason, piece.usage)
        raise JarvisError("The answer ended without a result.")  # pragma: no cover


# -- pure helpers -------------------------------------------------------------------------------


def model_entries(choices: Sequence[ProviderChoice]) -> list[ModelEntry]:
    """``provider/model`` for every model of every usable provider, in the picker's order."""
    return [ModelEntry(f"{c.id}/{m}", c.id, m) for c in choices for m in c.models]


def resolve_model(choices: Sequence[ProviderChoice], requested: str) -> tuple[str, str]:
    """``(provider, model)`` for a requested ``provider/model``, bare provider (its default
    model) or bare model name listed once; :class:`NotFoundError` otherwise. An
    OpenAI-compatible server takes any model name (it serves what its owner pulled)."""
    wanted = requested.strip()
    by_id = {c.id: c for c in choices}
    provider, _, model = wanted.partition("/")
    choice = by_id.get(provider)
    if choice is not None:
        if not model:
            return choice.id, choice.default_model
        if model in choice.models or choice.id == OPENAI_COMPATIBLE:
            return choice.id, model
    else:
        matches = [(c.id, m) for c in choices for m in c.models if m == wanted]
        if len(matches) == 1:
            return matches[0]
    raise NotFoundError(
        f"The model {wanted[:200]!r} does not exist or you cannot use it "
        "(GET /models lists yours; add a provider's key on the Secrets page)."
    )


def split_turns(messages: Sequence[ChatTurn]) -> tuple[list[tuple[str, str]], str]:
    """The conversation before the last message (``(role, text)``, at most
    :data:`MAX_HISTORY_MESSAGES`, system instructions first) and the last user message."""
    if not messages or messages[-1].role != "user":
        raise ValidationError("The last message must be from the user.", field="messages")
    text = clean_text(
        messages[-1].content,
        field="messages",
        label="last message",
        max_chars=MAX_MESSAGE_CHARS,
        multiline=True,
    )
    instructions: list[str] = []
    earlier: list[tuple[str, str]] = []
    for turn in messages[:-1]:
        if turn.role not in SYSTEM_ROLES | {"user", "assistant"}:
            continue  # tool results of the client's own tools: Jarvis cannot use them
        content = clean_text(
            turn.content,
            field="messages",
            label="message",
            max_chars=MAX_HISTORY_CHARS,
            multiline=True,
            required=False,
        )
        if not content:
            continue
        if turn.role in SYSTEM_ROLES:
            instructions.append(content)
        else:
            earlier.append((turn.role, content))
    history: list[tuple[str, str]] = []
    if instructions:
        history.append(("user", INSTRUCTIONS_LEAD + "\n\n".join(instructions)))
    kept = earlier[-(MAX_HISTORY_MESSAGES - len(history)) :]
    if kept and kept[0][0] == "assistant":
        kept = kept[1:]  # context starts with a question (some providers insist)
    return history + kept, text


def failure(error_type: str, message: str) -> JarvisError:
    """The error a failed run reports: its :mod:`jarvis.errors` class (by name) and message."""
    cls = getattr(errors, error_type, None) if error_type else None
    if not (isinstance(cls, type) and issubclass(cls, JarvisError)):
        cls = JarvisError
    return cls(message or None)
