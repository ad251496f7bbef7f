"""Personal API keys (0014). Rows are the user's own (row-level security); the one lookup before
the caller is known goes through the owner's narrow function ``jarvis_api_key_user``."""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from jarvis.db.tables import ApiKey


@dataclass(frozen=True, slots=True)
class KeyUser:
    """A live key and what a request needs of its (active) user."""

    key_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    role: str
    display_name: str


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        self.session.flush()
        return key

    def list(self, user_id: uuid.UUID) -> builtins.list[ApiKey]:
        return builtins.list(
            self.session.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id)
            )
        )

    def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return self.session.get(ApiKey, key_id)

    def revoke(self, key_id: uuid.UUID, now: datetime) -> bool:
        result = self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def key_user(self, key_hash: str, now: datetime) -> KeyUser | None:
        """The live key with this hash and its active user, its use recorded; else None. The
        use is written at most once a minute (migration 0024), and that commit does not wait
        for the disk (``synchronous_commit`` off for this transaction: a last use lost in a
        crash is the one before, a minute older)."""
        row = self.session.execute(
            text(
                "SELECT k.key_id, k.user_id, k.email, k.role, k.display_name"
                " FROM jarvis_api_key_user(:h, :now) k,"
                " (SELECT set_config('synchronous_commit', 'off', true)) async_commit"
            ),
            {"h": key_hash, "now": now},
        ).first()
        if row is None:
            return None
        return KeyUser(
            uuid.UUID(str(row.key_id)),
            uuid.UUID(str(row.user_id)),
            row.email,
            row.role,
            row.display_name,
        )
