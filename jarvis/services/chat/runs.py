"""Each user turn is an agent run that belongs to the server, not to the page that started it.

``RunService.start(principal, conversation_id, text)`` admits the turn in one statement
(message rate, concurrent runs, a reservation against the month's budget, the run row and the
user's message) and hands the run to this process's workers; it returns the run's id at once.
Anyone may then :meth:`~RunService.follow` the run's event log (the chat page after a reload,
another tab, the SSE endpoint, another process) and :meth:`~RunService.cancel` it from anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal

import anyio

from jarvis.clock import Clock
from jarvis.config import Settings
from jarvis.db.repositories.run_log import Admitted, RunAdmission
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import (
    BudgetExceededError,
    JarvisError,
    LimitExceededError,
    NotFoundError,
    RateLimitError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.llm.models import default_model
from jarvis.llm.offline import OFFLINE
from jarvis.services.chat import events as ev
from jarvis.services.chat.conversations import DEFAULT_TITLE, ConversationService, clean_title
from jarvis.services.chat.engine import RunEngine
from jarvis.services.chat.log import Flusher, RunEventWriter, follow, follow_async
from jarvis.services.chat.ports import EventWatcher
from jarvis.services.chat.recovery import STALE_RUN_AFTER, STALE_RUN_REASON, RunRecovery
from jarvis.services.chat.state import RunState, money
from jarvis.services.chat.views import RunOutcome, RunView, ToolCallView
from jarvis.services.chat.workers import RunWorkers, StopFlag
from jarvis.services.usage.rules import WARNING_FRACTION
from jarvis.validation import clean_text

MAX_MESSAGE_CHARS = 20_000
MAX_HISTORY_MESSAGES = 20


@dataclass(frozen=True, slots=True)
class StartedRun:
    """A run admitted and handed to a worker."""

    run_id: uuid.UUID
    conversation_id: uuid.UUID
    provider: str
    model: str
    budget_warning: bool
    budget_fraction: float


@dataclass(frozen=True, slots=True)
class FollowedEvent:
    """One event of a run's log with its sequence number (the SSE ``id``)."""

    seq: int
    event: ev.Event


class RunService:
    """Starts, follows and stops the signed-in user's agent runs."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        settings: Settings,
        *,
        engine: RunEngine,
        workers: RunWorkers,
        recovery: RunRecovery,
        conversations: ConversationService,
        watcher: EventWatcher | None = None,
        flusher: Flusher | None = None,
    ) -> None:
        self._uow = uow
        self._conversations = conversations
        self._clock = clock
        self._settings = settings
        self._engine = engine
        self._workers = workers
        self._recovery = recovery
        self._watcher = watcher
        self._flusher = flusher

    # -- starting -----------------------------------------------------------------------------

    def start(self, principal: Principal, conversation_id: uuid.UUID, text: str) -> StartedRun:
        """Admit one turn and start it on a worker; returns at once with the run's id.

        Refusals raise :class:`RateLimitError` (messages per minute), :class:`LimitExceededError`
        (answers in progress, monthly budget, an answer still running in this conversation),
        :class:`NotFoundError` or :class:`ValidationError`; a refused turn changes nothing."""
        text = clean_text(
            text,
            field="message",
            label="message",
            max_chars=MAX_MESSAGE_CHARS,
            multiline=True,
            required=False,
        )
        if not text:
            raise ValidationError("Type a message first.", field="message")
        settings = self._settings
        run_id, message_id = uuid.uuid4(), uuid.uuid4()
        now = self._clock.now()
        self._workers.ensure_registered()  # the run names this process: known before it runs
        with self._uow.statements(principal) as uow:
            admission = uow.run_log.start(
                user_id=principal.user_id,
                role=principal.role,
                conversation_id=conversation_id,
                run_id=run_id,
                message_id=message_id,
                worker_id=self._workers.worker_id,
                text_=text,
                title=clean_title(text),
                default_title=DEFAULT_TITLE,
                now=now,
                max_running=settings.max_concurrent_runs,
                per_minute=settings.messages_per_minute,
                cost_cap=Decimal(str(settings.max_cost_per_run_usd)),
                default_budget=Decimal(str(settings.default_monthly_budget_usd)),
                history=MAX_HISTORY_MESSAGES,
                stale_before=now - STALE_RUN_AFTER,
                stale_reason=STALE_RUN_REASON,
            )
            uow.commit()
        data = _admitted(admission, settings)
        fraction = float(data.spent / data.budget) if data.budget > 0 else 1.0
        started = ev.RunStarted(
            run_id=run_id,
            conversation_id=conversation_id,
            provider=data.provider,
            model=data.model,
            user_message_id=message_id,
            budget_warning=fraction >= WARNING_FRACTION,
            budget_fraction=fraction,
        )
        state = RunState(
            principal,
            run_id,
            conversation_id,
            started.provider,
            started.model,
            text=text,
            started=started,
            last_stamp=data.started_at,
            history=data.history,
            permissions=data.permissions,
            secret_providers=data.secret_providers,
            reserved_usd=data.reserved,
            has_memories=data.has_memories,
            deadline=time.monotonic() + settings.run_deadline_seconds,
        )
        self._workers.submit(run_id, lambda stop: self._execute(state, stop))
        return StartedRun(
            run_id,
            conversation_id,
            started.provider,
            started.model,
            started.budget_warning,
            fraction,
        )

    def start_in(
        self,
        principal: Principal,
        text: str,
        *,
        conversation_id: uuid.UUID | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> StartedRun:
        """:meth:`start` in ``conversation_id``, or in a new conversation (``provider`` /
        ``model``, offline by default); a given provider or model switches the conversation
        first, so the turn runs with what the caller showed (the chat page's picker). A refused
        turn leaves no new conversation behind."""
        if conversation_id is None:
            chosen = provider or OFFLINE
            created = self._conversations.create(
                principal, provider=chosen, model=model or default_model(chosen)
            ).id
            try:
                return self.start(principal, created, text)
            except JarvisError:
                with contextlib.suppress(JarvisError):  # the refusal is what the caller needs
                    self._conversations.delete(principal, created)
                raise
        if provider or model:
            current = self._conversations.get(principal, conversation_id)
            chosen = provider or current.provider or OFFLINE
            wanted = model or default_model(chosen)
            if (chosen, wanted) != (current.provider, current.model):
                self._conversations.set_model(principal, conversation_id, chosen, wanted)
        return self.start(principal, conversation_id, text)

    async def answer(
        self,
        principal: Principal,
        text: str,
        *,
        conversation_id: uuid.UUID | None = None,
        provider: str | None = None,
        model: str | None = None,
    ) -> RunOutcome:
        """:meth:`start_in`, then :meth:`outcome`: the turn's answer once it has ended. The
        admission runs on a worker thread, so the event loop (every other request and stream
        of the process) never waits for the database."""
        start = functools.partial(
            self.start_in,
            principal,
            text,
            conversation_id=conversation_id,
            provider=provider,
            model=model,
        )
        started = await anyio.to_thread.run_sync(start)
        return await self.outcome(principal, started.run_id)

    async def outcome(self, principal: Principal, run_id: uuid.UUID) -> RunOutcome:
        """Wait for the run's end (without holding a thread); its answer and tool steps."""
        run = await anyio.to_thread.run_sync(self.get, principal, run_id)
        calls: dict[str, ToolCallView] = {}
        answer, status, error = "", "running", None
        tokens, cost, unpriced = 0, None, False
        async for followed in self.follow_async(principal, run_id):
            e = followed.event
            if isinstance(e, ev.TextDelta):
                answer += e.text
            elif isinstance(e, ev.ToolCallStarted):
                calls[e.call_id] = ToolCallView(
                    uuid.uuid4(), e.tool_id, dict(e.arguments), None, "running", None
                )
            elif isinstance(e, ev.ToolCallFinished):
                calls[e.call_id] = ToolCallView(
                    calls[e.call_id].id if e.call_id in calls else uuid.uuid4(),
                    e.tool_id,
                    calls[e.call_id].arguments if e.call_id in calls else {},
                    dict(e.result),
                    e.status,
                    e.latency_ms,
                )
            elif isinstance(e, ev.ToolCallDenied):
                calls[e.call_id] = ToolCallView(
                    uuid.uuid4(), e.tool_id, {}, {"error": e.reason}, "denied", None
                )
            elif isinstance(e, ev.RunCompleted):
                status, answer = "completed", e.text
                tokens, cost, unpriced = e.total_tokens, e.cost_usd, e.unpriced
            elif isinstance(e, ev.RunCancelled):
                status, tokens, cost = "cancelled", e.total_tokens, e.cost_usd
            elif isinstance(e, ev.RunFailed):
                status, error, tokens, cost = "failed", e.error, e.total_tokens, e.cost_usd
        if status == "running":  # a run from before the log: read how it ended
            run = await anyio.to_thread.run_sync(self.get, principal, run_id)
            status, error, tokens = run.status, run.error, run.total_tokens
            cost, unpriced = run.cost_usd, run.unpriced
        return RunOutcome(
            run_id=run_id,
            conversation_id=run.conversation_id or uuid.UUID(int=0),
            status=status,
            answer=answer.strip(),
            error=error,
            total_tokens=tokens,
            cost_usd=cost,
            unpriced=unpriced,
            tool_calls=list(calls.values()),
        )

    def _execute(self, state: RunState, stop: StopFlag) -> None:
        writer = RunEventWriter(
            self._uow, state.principal.user_id, state.run_id, flusher=self._flusher
        )
        self._engine.execute(state, stop, writer)

    # -- following and stopping ---------------------------------------------------------------

    def follow(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        after: int = 0,
        *,
        timeout: float | None = None,
    ) -> Iterator[FollowedEvent]:
        """The run's events after sequence number ``after``, then each new one as it happens,
        until the run's terminal event (or ``timeout`` seconds). Replaying from 0 shows a run
        exactly as it went, whoever started it and wherever it runs."""
        until = None if timeout is None else time.monotonic() + timeout
        for logged in follow(
            self._uow, self._watcher, principal.user_id, run_id, after, until=until
        ):
            yield FollowedEvent(logged.seq, ev.from_dict(logged.payload))

    def events(
        self, principal: Principal, run_id: uuid.UUID, after: int = 0
    ) -> list[FollowedEvent]:
        """The run's events logged so far after ``after`` (no waiting)."""
        with self._uow.statements(principal) as uow:
            found = uow.run_log.read(principal.user_id, run_id, after)
        if not found and after == 0:
            self.status(principal, run_id)  # NotFoundError for someone else's run
        return [FollowedEvent(e.seq, ev.from_dict(e.payload)) for e in found]

    def run(
        self, principal: Principal, conversation_id: uuid.UUID, text: str
    ) -> Iterator[ev.Event]:
        """Start a turn (refusals raise now) and follow it: its typed events to the end.
        Dropping the iterator only stops following; the run goes on (see :meth:`cancel`)."""
        started = self.start(principal, conversation_id, text)
        return (f.event for f in self.follow(principal, started.run_id))

    def cancel(self, principal: Principal, run_id: uuid.UUID) -> bool:
        """Ask the run to stop (any process running it stops within a second). False when it
        is not running any more; :class:`NotFoundError` when it is not the user's."""
        with self._uow(principal) as uow:
            if uow.runs.get(run_id) is None:
                raise NotFoundError("That run does not exist.")
            asked = uow.run_log.request_cancel(run_id, self._clock.now())
            uow.commit()
        if asked:
            self._workers.stop_locally(run_id)
        return asked

    async def follow_async(
        self,
        principal: Principal,
        run_id: uuid.UUID,
        after: int = 0,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[FollowedEvent]:
        """:meth:`follow` for coroutines (the SSE endpoint): waits hold no thread."""
        until = None if timeout is None else time.monotonic() + timeout
        async for logged in follow_async(
            self._uow, self._watcher, principal.user_id, run_id, after, until=until
        ):
            yield FollowedEvent(logged.seq, ev.from_dict(logged.payload))

    def stream(
        self, principal: Principal, run_id: uuid.UUID, after: int = 0
    ) -> AsyncIterator[FollowedEvent]:
        """:meth:`follow_async`, with :class:`NotFoundError` raised now (before a response
        starts) when the run is not the user's."""
        self.get(principal, run_id)
        return self.follow_async(principal, run_id, after)

    def get(self, principal: Principal, run_id: uuid.UUID) -> RunView:
        """The run as it stands (:class:`NotFoundError` when it is not the user's)."""
        with self._uow(principal) as uow:
            run = uow.runs.get(run_id)
            if run is None:
                raise NotFoundError("That run does not exist.")
            return RunView(
                id=run.id,
                conversation_id=run.conversation_id,
                status=run.status,
                provider=run.provider,
                model=run.model,
                input_tokens=int(run.input_tokens or 0),
                output_tokens=int(run.output_tokens or 0),
                total_tokens=int(run.total_tokens or 0),
                cost_usd=run.total_cost,
                unpriced=bool(run.unpriced),
                usage_estimated=bool(run.usage_estimated),
                error=run.error,
                started_at=run.started_at,
                finished_at=run.finished_at,
                cancel_requested=run.cancel_requested_at is not None,
            )

    def request_stop(self, principal: Principal, run_id: uuid.UUID) -> RunView:
        """:meth:`cancel`, then the run as it stands."""
        self.cancel(principal, run_id)
        return self.get(principal, run_id)

    def status(self, principal: Principal, run_id: uuid.UUID) -> str:
        """``running``, ``completed``, ``failed`` or ``cancelled``."""
        return self.get(principal, run_id).status

    def active_run(self, principal: Principal, conversation_id: uuid.UUID) -> uuid.UUID | None:
        """The conversation's run in progress, if any (the page attaches to it)."""
        with self._uow(principal) as uow:
            return uow.run_log.running_in(conversation_id)

    # -- recovery -----------------------------------------------------------------------------

    def recover_stale_runs(self, reason: str = STALE_RUN_REASON) -> int:
        """Mark runs left ``running`` by a dead process ``failed`` (every user's; start-up)."""
        return self._recovery.recover_stale_runs(reason)

    def recover_stale_runs_safely(self) -> int:
        """:meth:`recover_stale_runs` for start-up: a failure is logged, never fatal."""
        return self._recovery.recover_stale_runs_safely()

    @property
    def worker_id(self) -> uuid.UUID | None:
        """This process's id in ``run_workers`` (None when runs execute inline)."""
        return self._workers.worker_id

    def shutdown(self) -> None:
        """Stop this process's workers (runs in progress end ``failed`` with a reason)."""
        self._workers.shutdown()


def _admitted(admission: RunAdmission, settings: Settings) -> Admitted:
    """The admitted run, or the refusal as the error a user understands."""
    outcome = admission.outcome
    if outcome == "ok" and admission.admitted is not None:
        return admission.admitted
    if outcome == "no_conversation":
        raise NotFoundError("That conversation does not exist.")
    if outcome == "conversation_busy":
        raise LimitExceededError(
            "Jarvis is still answering in this conversation. Wait for the answer or press Stop."
        )
    if outcome == "rate_limited":
        wait = admission.retry_after or 60.0
        raise RateLimitError(
            f"You are sending messages too fast (limit {settings.messages_per_minute} "
            f"per minute). Try again in {int(wait)} s.",
            retry_after=wait,
        )
    if outcome == "busy":
        raise LimitExceededError(
            f"You already have {admission.running} answer(s) in progress (limit "
            f"{settings.max_concurrent_runs}). Wait for them to finish or stop one."
        )
    if outcome == "budget":
        spent, budget, reserved = admission.spent, admission.budget, admission.reserved
        held = f" (${money(reserved)} is held by answers in progress)" if reserved > 0 else ""
        raise BudgetExceededError(
            f"You have used ${money(spent)} of your ${money(budget)} monthly budget{held}. "
            "New runs are paused until next month or until an admin raises it."
        )
    raise LimitExceededError("The run could not be started.")
