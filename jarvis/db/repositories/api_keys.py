"""Personal API keys (0014). Rows are the user's own (row-level security); the one lookup before
the caller is known goes through the owner's narrow function ``jarvis_api_key_user``."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from jarvis.db.tables import ApiKey


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

    def owner_of(self, key_hash: str, now: datetime) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(key id, user id) of a live key of an active user, its use recorded; else None."""
        row = self.session.execute(
            text("SELECT key_id, user_id FROM jarvis_api_key_user(:h, :now)"),
            {"h": key_hash, "now": now},
        ).first()
        return None if row is None else (uuid.UUID(str(row.key_id)), uuid.UUID(str(row.user_id)))
