"""User secrets (encrypted rows).

Row-level security already limits every query to the unit of work's user; the explicit
``user_id`` filters are a second fence, not the only one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jarvis.db.errors import is_unique_violation
from jarvis.db.tables import UserSecret
from jarvis.errors import ConflictError


class SecretRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def all_for(self, user_id: uuid.UUID) -> list[UserSecret]:
        return list(
            self.session.scalars(
                select(UserSecret)
                .where(UserSecret.user_id == user_id)
                .order_by(UserSecret.provider, UserSecret.name)
            )
        )

    def get(
        self, user_id: uuid.UUID, secret_id: uuid.UUID, *, for_update: bool = False
    ) -> UserSecret | None:
        query = select(UserSecret).where(UserSecret.user_id == user_id, UserSecret.id == secret_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def by_name(self, user_id: uuid.UUID, provider: str, name: str) -> UserSecret | None:
        return self.session.scalar(
            select(UserSecret).where(
                UserSecret.user_id == user_id,
                UserSecret.provider == provider,
                UserSecret.name == name,
            )
        )

    def for_provider(self, user_id: uuid.UUID, provider: str) -> list[UserSecret]:
        """The user's secrets of ``provider``, the most recently updated first."""
        return list(
            self.session.scalars(
                select(UserSecret)
                .where(UserSecret.user_id == user_id, UserSecret.provider == provider)
                .order_by(UserSecret.updated_at.desc(), UserSecret.name)
            )
        )

    def any_of(self, user_id: uuid.UUID) -> UserSecret | None:
        """One of the user's rows (its wrapped data key is the user's data key)."""
        return self.session.scalar(
            select(UserSecret)
            .where(UserSecret.user_id == user_id)
            .order_by(UserSecret.created_at)
            .limit(1)
        )

    def providers(self, user_id: uuid.UUID) -> set[str]:
        return set(
            self.session.scalars(
                select(UserSecret.provider).where(UserSecret.user_id == user_id).distinct()
            )
        )

    def add(self, secret: UserSecret) -> UserSecret:
        """Insert ``secret``; :class:`ConflictError` when the user has one of that name."""
        self.session.add(secret)
        try:
            self.session.flush()
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise ConflictError() from exc
            raise
        return secret

    def remove(self, secret: UserSecret) -> None:
        self.session.delete(secret)
        self.session.flush()

    def lock_all(self, user_id: uuid.UUID) -> list[UserSecret]:
        """Every row of the user, locked for this transaction (rotation)."""
        return list(
            self.session.scalars(
                select(UserSecret)
                .where(UserSecret.user_id == user_id)
                .order_by(UserSecret.id)
                .with_for_update()
            )
        )

    def touch_used(self, secret_id: uuid.UUID, when: datetime) -> None:
        self.session.execute(
            update(UserSecret).where(UserSecret.id == secret_id).values(last_used_at=when)
        )

    def count_by_key_version(self, user_id: uuid.UUID) -> dict[int, int]:
        rows = self.session.execute(
            select(UserSecret.key_version, func.count())
            .where(UserSecret.user_id == user_id)
            .group_by(UserSecret.key_version)
        ).all()
        return {int(v): int(n) for v, n in rows}


class UserIdRepository:
    """The users who hold secrets, for maintenance that walks them (key rotation), through a
    narrow definer function (the app role cannot list users)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def all_ids(self) -> list[uuid.UUID]:
        return [
            uuid.UUID(str(v))
            for v in self.session.scalars(text("select * from jarvis_secret_owner_ids()"))
        ]
