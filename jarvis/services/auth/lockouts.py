"""Per-account failure counting, shared by the sign-in form and the password change.

Keys are login names (:func:`~jarvis.services.auth.policy.lockout_key`), whether or not an
account has that email, so a lockout never tells which emails exist. The methods work inside
the caller's unit of work (any user, or none: the table is reached only through narrow definer
functions, migration 0013): the count and the caller's audit events commit together.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWork
from jarvis.services.auth.policy import LoginPolicy


class AccountLockouts:
    """Failures in a row per login name, and the growing lockouts they lead to."""

    def __init__(self, clock: Clock, policy: LoginPolicy) -> None:
        self._clock = clock
        self.policy = policy

    def remaining(self, uow: UnitOfWork, key: str) -> float | None:
        """Seconds until ``key`` is unlocked, or None when it is not locked."""
        lock = uow.lockouts.get(key)
        now = self._clock.now()
        if lock is not None and lock.locked_until is not None and lock.locked_until > now:
            return (lock.locked_until - now).total_seconds()
        return None

    def count_failure(
        self, uow: UnitOfWork, key: str, user_id: uuid.UUID | None, ip: str | None
    ) -> int | None:
        """Add one failure to ``key``; the lockout length (seconds) if this one locks it.

        A lockout is audited as ``login.lockout``. The caller commits."""
        now = self._clock.now()
        row = uow.lockouts.for_update(key)
        forget = timedelta(seconds=self.policy.forget_after_seconds)
        if row.last_failure_at is not None and now - row.last_failure_at > forget:
            row.failures, row.lockouts = 0, 0
        row.failures += 1
        row.last_failure_at = now
        if row.failures < self.policy.account_threshold:
            uow.lockouts.save(row)
            return None
        row.lockouts += 1
        row.failures = 0
        seconds = self.policy.lockout_seconds(row.lockouts)
        row.locked_until = now + timedelta(seconds=seconds)
        uow.lockouts.save(row)
        uow.audit.record(
            "login.lockout",
            user_id=user_id,
            ip=ip,
            details={"seconds": seconds, "lockouts": row.lockouts},
        )
        return seconds

    def clear(self, uow: UnitOfWork, key: str) -> None:
        """Forget ``key``'s failures (after a successful sign-in)."""
        uow.lockouts.clear(key)

    @staticmethod
    def purge_idle(uow: UnitOfWork, before: datetime) -> int:
        """Drop counters with no failure since ``before``; how many went."""
        return uow.lockouts.purge_idle(before)
