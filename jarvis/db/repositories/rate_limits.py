"""Fixed-window counters and account lockouts, shared by every app process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from jarvis.db.tables import AccountLockout, RateLimitBucket


class RateLimitRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def increment(self, key: str, window_start: datetime) -> int:
        """Add one to the bucket ``(key, window_start)`` atomically; return the new count."""
        stmt = (
            insert(RateLimitBucket)
            .values(key=key, window_start=window_start, count=1)
            .on_conflict_do_update(
                index_elements=[RateLimitBucket.key, RateLimitBucket.window_start],
                set_={"count": RateLimitBucket.count + 1},
            )
            .returning(RateLimitBucket.count)
        )
        return int(self.session.execute(stmt).scalar_one())

    def count(self, key: str, window_start: datetime) -> int:
        value = self.session.scalar(
            select(RateLimitBucket.count).where(
                RateLimitBucket.key == key, RateLimitBucket.window_start == window_start
            )
        )
        return int(value or 0)

    def delete_before(self, key: str, window_start: datetime) -> None:
        self.session.execute(
            delete(RateLimitBucket).where(
                RateLimitBucket.key == key, RateLimitBucket.window_start < window_start
            )
        )

    def reset(self, key: str) -> None:
        self.session.execute(delete(RateLimitBucket).where(RateLimitBucket.key == key))

    def purge_before(self, when: datetime) -> int:
        result = self.session.execute(
            delete(RateLimitBucket).where(RateLimitBucket.window_start < when)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class LockoutRepository:
    """Per-account failure counters (keyed by the normalised login name, known or not)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> AccountLockout | None:
        return self.session.get(AccountLockout, key)

    def for_update(self, key: str) -> AccountLockout:
        """The row for ``key``, created if missing, locked for this transaction."""
        self.session.execute(
            insert(AccountLockout).values(key=key, failures=0, lockouts=0).on_conflict_do_nothing()
        )
        row = self.session.scalars(
            select(AccountLockout)
            .where(AccountLockout.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        return row

    def clear(self, key: str) -> None:
        self.session.execute(delete(AccountLockout).where(AccountLockout.key == key))

    def purge_idle(self, before: datetime) -> int:
        result = self.session.execute(
            delete(AccountLockout).where(
                func.coalesce(AccountLockout.last_failure_at, before) < before
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
