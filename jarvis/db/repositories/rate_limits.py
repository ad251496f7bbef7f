"""Fixed-window counters and account lockouts, shared by every app process.

Both tables hold sign-in IPs, login names and user ids, so the app role has no rights on them
(forced row-level security, migration 0013): every statement here calls a narrow ``SECURITY
DEFINER`` function that works on one key at a time. Nobody can list who tried to sign in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


class RateLimitRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def hit(self, key: str, window_start: datetime) -> int:
        """Add one to the bucket ``(key, window_start)`` atomically and return the new count;
        the first hit of a window drops the key's older windows."""
        return self.hit_many([key], window_start)[0]

    def hit_many(self, keys: Sequence[str], window_start: datetime) -> list[int]:
        """:meth:`hit` for each key, in order, in one statement (an API request counts against
        its user's and its address's limits in one round trip). Its commit does not wait for
        the disk (``synchronous_commit`` off for this transaction): every request of a user
        counts on one row, whose lock is held until the commit; a count lost in a crash is
        harmless. Callers list the keys in one fixed order of kinds (a user's before an
        address's), so two transactions never wait for each other's rows."""
        rows = self.session.execute(
            text(
                "select jarvis_rate_limit_hit(k.key, :w)"
                " from (select set_config('synchronous_commit', 'off', true)) async_commit,"
                " unnest(CAST(:keys AS text[])) WITH ORDINALITY k(key, i)"
                " order by k.i"
            ),
            {"keys": list(keys), "w": window_start},
        )
        return [int(n or 0) for (n,) in rows]

    def count(self, key: str, window_start: datetime) -> int:
        value = self.session.scalar(
            text("select jarvis_rate_limit_count(:k, :w)"), {"k": key, "w": window_start}
        )
        return int(value or 0)

    def reset(self, key: str) -> None:
        self.session.execute(text("select jarvis_rate_limit_reset(:k)"), {"k": key})

    def purge_before(self, when: datetime) -> int:
        value = self.session.scalar(text("select jarvis_rate_limit_purge(:w)"), {"w": when})
        return int(value or 0)


@dataclass(slots=True)
class LockoutState:
    """The failure counter of one login name (changed in Python, written back by ``save``)."""

    key: str
    failures: int = 0
    lockouts: int = 0
    locked_until: datetime | None = None
    last_failure_at: datetime | None = None


_COLUMNS = "key, failures, lockouts, locked_until, last_failure_at"


class LockoutRepository:
    """Per-account failure counters (keyed by the normalised login name, known or not)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> LockoutState | None:
        row = self.session.execute(
            text(f"select {_COLUMNS} from jarvis_lockout_get(:k)"), {"k": key}
        ).first()
        return LockoutState(*row) if row else None

    def for_update(self, key: str) -> LockoutState:
        """The state of ``key``, created if missing, its row locked for this transaction."""
        row = self.session.execute(
            text(f"select {_COLUMNS} from jarvis_lockout_lock(:k)"), {"k": key}
        ).one()
        return LockoutState(*row)

    def save(self, state: LockoutState) -> None:
        """Write back a state read with :meth:`for_update`."""
        self.session.execute(
            text("select jarvis_lockout_save(:k, :f, :n, :u, :t)"),
            {
                "k": state.key,
                "f": state.failures,
                "n": state.lockouts,
                "u": state.locked_until,
                "t": state.last_failure_at,
            },
        )

    def clear(self, key: str) -> None:
        self.session.execute(text("select jarvis_lockout_clear(:k)"), {"k": key})

    def purge_idle(self, before: datetime) -> int:
        value = self.session.scalar(text("select jarvis_lockout_purge(:b)"), {"b": before})
        return int(value or 0)
