"""Runs left ``running`` by a dead process are failed, never left hanging.

Every app process beats in ``run_workers`` (:mod:`jarvis.services.chat.workers`); a running run
whose process stopped beating for :data:`jarvis.services.chat.workers.STALE_AFTER` — or, for a
run without a process, whose own heartbeat is older than :data:`STALE_RUN_AFTER` — is marked
``failed`` by the SECURITY DEFINER function ``jarvis_fail_stale_runs`` (0011): its log gets a
``run_failed`` event, its budget reservation is released and its usage counted. Any process
does it for every process: at start-up, every few seconds in the supervisor, and when a user's
concurrency slots are full.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)

#: A ``running`` run without a process and without progress for this long is dead.
STALE_RUN_AFTER = timedelta(seconds=30)
STALE_RUN_REASON = "The server stopped while this run was in progress."


class RunRecovery:
    """Fails stale runs (every user's)."""

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
