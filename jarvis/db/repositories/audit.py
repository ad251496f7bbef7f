"""Append-only audit events. Details never hold a secret value, a password or a token."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from jarvis.db.tables import AuditEvent
from jarvis.security.redaction import redact_value


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        action: str,
        *,
        user_id: uuid.UUID | None,
        actor_id: uuid.UUID | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
        ip: str | None = None,
    ) -> None:
        self.session.add(
            AuditEvent(
                # A client-side id: no RETURNING, so writing needs no read permission (append-only).
                id=uuid.uuid4(),
                user_id=user_id,
                actor_id=actor_id if actor_id is not None else user_id,
                action=action,
                target=target,
                details=redact_value(details or {}),
                ip=ip,
            )
        )
        self.session.flush()
