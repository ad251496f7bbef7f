"""Each user turn runs as an agent run: admission here, the tool loop in
:mod:`jarvis.services.chat.engine`.

``RunService.run(principal, conversation_id, text)`` checks the guards (message, rate, monthly
budget, concurrent runs), commits the user's message and a ``running`` run in one transaction,
then returns the run's iterator of typed events (:mod:`jarvis.services.chat.events`). A run left
``running`` by a dead process is marked ``failed`` by stale-run recovery
(:mod:`jarvis.services.chat.recovery`, at start-up) — see migration 0006.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

from jarvis.clock import Clock
from jarvis.config import Settings
from jarvis.db.tables import AgentRun, Message
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import LimitExceededError, RateLimitError, ValidationError
from jarvis.identity import Principal
from jarvis.services.chat import events as ev
from jarvis.services.chat.conversations import DEFAULT_TITLE, clean_title, load_conversation
from jarvis.services.chat.engine import RunEngine
from jarvis.services.chat.ports import BudgetPort, BudgetStatusLike, CancelFlag, RateLimiterPort
from jarvis.services.chat.recovery import STALE_RUN_AFTER, STALE_RUN_REASON, RunRecovery
from jarvis.services.chat.state import RunState, money

MAX_MESSAGE_CHARS = 20_000
MAX_HISTORY_MESSAGES = 20


class RunService:
    """Starts agent runs of the signed-in user, and recovers the runs of dead processes."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        settings: Settings,
        *,
        engine: RunEngine,
        rate_limiter: RateLimiterPort,
        budgets: BudgetPort,
        recovery: RunRecovery,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings
        self._engine = engine
        self._rate_limiter = rate_limiter
        self._budgets = budgets
        self._recovery = recovery

    def run(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        text: str,
        *,
        cancel: CancelFlag | None = None,
    ) -> Iterator[ev.Event]:
        """Run one user turn. Guards are checked and the user's message is committed before
        this returns (refusals raise :class:`RateLimitError` / :class:`LimitExceededError`);
        the returned iterator yields the run's events. Closing the iterator early, or setting
        ``cancel``, cancels the run."""
        text = (text or "").strip()
        if not text:
            raise ValidationError("Type a message first.", field="message")
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValidationError(
                f"Messages are limited to {MAX_MESSAGE_CHARS:,} characters.", field="message"
            )
        decision = self._rate_limiter.hit(
            f"chat:messages:{principal.user_id}", self._settings.messages_per_minute, 60
        )
        if not decision.allowed:
            raise RateLimitError(
                f"You are sending messages too fast (limit {self._settings.messages_per_minute} "
                f"per minute). Try again in {int(decision.retry_after) + 1} s.",
                retry_after=decision.retry_after,
            )
        budget = self._budgets.budget_status(principal)
        if budget.exceeded:
            raise LimitExceededError(
                f"You have used ${money(budget.spent_usd)} of your ${money(budget.budget_usd)} "
                "monthly budget. New runs are paused until next month or until an admin raises it."
            )
        state = self._admit(principal, conversation_id, text, budget)
        return self._engine.drive(state, cancel or threading.Event())

    def recover_stale_runs(self, reason: str = STALE_RUN_REASON) -> int:
        """Mark runs left ``running`` by a dead process ``failed`` (every user's; start-up)."""
        return self._recovery.recover_stale_runs(reason)

    def recover_stale_runs_safely(self) -> int:
        """:meth:`recover_stale_runs` for start-up: a failure is logged, never fatal."""
        return self._recovery.recover_stale_runs_safely()

    def _admit(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        text: str,
        budget: BudgetStatusLike,
    ) -> RunState:
        """One transaction: the concurrency guard, the run row and the user's message."""
        now = self._clock.now()
        run_id, message_id = uuid.uuid4(), uuid.uuid4()
        limit = self._settings.max_concurrent_runs
        with self._uow(principal) as uow:
            conversation = load_conversation(uow, conversation_id)
            provider, model = conversation.provider or "offline", conversation.model or "offline"
            uow.runs.lock_user(principal.user_id)
            running = uow.runs.count_running(principal.user_id)
            if running >= limit:
                # A run of a dead process must not hold the slot: fail the stale ones (the
                # recovery function also adds them to the usage rollups), recount.
                uow.runs.fail_stale(now - STALE_RUN_AFTER, STALE_RUN_REASON)
                running = uow.runs.count_running(principal.user_id)
            if running >= limit:
                raise LimitExceededError(
                    f"You already have {running} answer(s) in progress (limit "
                    f"{limit}). Wait for them to finish or stop one."
                )
            # Earlier turns for the model's context, read before this turn's message exists.
            history = [
                (m.role, m.content)
                for m in uow.messages.for_conversation(conversation_id, limit=MAX_HISTORY_MESSAGES)
                if m.role in ("user", "assistant")
            ]
            stamp = max(now, conversation.updated_at + timedelta(microseconds=1))
            uow.runs.add(
                AgentRun(
                    id=run_id,
                    user_id=principal.user_id,
                    conversation_id=conversation_id,
                    provider=provider,
                    model=model,
                    status="running",
                    started_at=stamp,
                    heartbeat_at=now,
                )
            )
            uow.messages.add(
                Message(
                    id=message_id,
                    run_id=run_id,
                    conversation_id=conversation_id,
                    user_id=principal.user_id,
                    role="user",
                    content=text,
                    created_at=stamp,
                )
            )
            conversation.updated_at = stamp
            if conversation.title == DEFAULT_TITLE:
                conversation.title = clean_title(text)
            uow.commit()
        started = ev.RunStarted(
            run_id=run_id,
            conversation_id=conversation_id,
            provider=provider,
            model=model,
            user_message_id=message_id,
            budget_warning=bool(budget.warning),
            budget_fraction=float(budget.fraction),
        )
        return RunState(
            principal,
            run_id,
            conversation_id,
            provider,
            model,
            text=text,
            started=started,
            last_stamp=stamp,
            history=history,
        )
