"""Runs left ``running`` by a dead process: heartbeats and stale-run recovery.

A run's heartbeat is refreshed while it makes progress (each tool call, streamed text at most
every :data:`HEARTBEAT_EVERY_SECONDS`) and, while this process drives runs, by the
:class:`Heartbeat` thread. A ``running`` run whose heartbeat is older than
:data:`STALE_RUN_AFTER` belongs to a dead process and is marked ``failed`` (the SECURITY DEFINER
function of migrations 0006 / 0007, which also adds it to the usage rollups): at start-up, by
the heartbeat thread, when a user's concurrency slot is full, and when a conversation showing
such a run is opened.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import timedelta

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal

log = logging.getLogger(__name__)

#: A ``running`` run without progress for this long belongs to a dead process.
STALE_RUN_AFTER = timedelta(minutes=2)
#: How often a process refreshes its runs' heartbeats (well under STALE_RUN_AFTER).
RUN_HEARTBEAT_SECONDS = 30.0
#: While a model streams, the run's heartbeat is refreshed at most this often.
HEARTBEAT_EVERY_SECONDS = 20.0
STALE_RUN_REASON = "The server stopped while this run was in progress."


class RunRecovery:
    """Fails stale runs (every user's) and refreshes heartbeats of this process's runs."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def recover_stale_runs(self, reason: str = STALE_RUN_REASON) -> int:
        """Mark runs left ``running`` by a dead process ``failed`` (every user's; start-up)."""
        before = self._clock.now() - STALE_RUN_AFTER
        with self._uow() as uow:
            count = uow.runs.fail_stale(before, reason)
            uow.commit()
        if count:
            log.warning("marked stale runs failed", extra={"runs": count})
        return count

    def recover_stale_runs_safely(self) -> int:
        """:meth:`recover_stale_runs` for start-up: a failure is logged, never fatal."""
        try:
            return self.recover_stale_runs()
        except Exception:
            log.warning("could not recover stale runs at start-up", exc_info=True)
            return 0

    def touch_runs(self, principal: Principal, run_ids: list[uuid.UUID]) -> None:
        """Refresh the heartbeat of this user's running runs (the heartbeat thread)."""
        with self._uow(principal) as uow:
            now = self._clock.now()
            for run_id in run_ids:
                uow.runs.heartbeat(run_id, now)
            uow.commit()


class Heartbeat:
    """While this process drives runs, a daemon thread refreshes their heartbeats every
    ``interval`` seconds and fails runs whose process stopped beating
    (:data:`STALE_RUN_AFTER`); with start-up recovery and the per-user check at each run's
    start, a crash never leaves a run ``running`` for long. The thread ends when idle."""

    def __init__(self, recovery: RunRecovery, interval: float) -> None:
        self._recovery = recovery
        self._interval = interval
        self._active: dict[uuid.UUID, Principal] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, run_id: uuid.UUID, principal: Principal) -> None:
        """Beat for ``run_id`` from now on (starts the thread if it is not running)."""
        with self._lock:
            self._active[run_id] = principal
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="jarvis-run-heartbeat", daemon=True
                )
                self._thread.start()

    def remove(self, run_id: uuid.UUID) -> None:
        """Stop beating for ``run_id`` (its run ended)."""
        with self._lock:
            self._active.pop(run_id, None)

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            with self._lock:
                if not self._active:
                    self._thread = None  # idle: the next run starts a new thread
                    return
                by_user: dict[uuid.UUID, tuple[Principal, list[uuid.UUID]]] = {}
                for run_id, principal in self._active.items():
                    by_user.setdefault(principal.user_id, (principal, []))[1].append(run_id)
            try:
                for principal, run_ids in by_user.values():
                    self._recovery.touch_runs(principal, run_ids)
                self._recovery.recover_stale_runs()
            except Exception:
                log.warning("run heartbeat failed", exc_info=True)
