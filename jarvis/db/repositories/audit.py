"""Append-only audit events. Details never hold a secret value, a password or a token."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from jarvis.db.tables import AuditEvent, User
from jarvis.redaction import redact_value


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
        details: Mapping[str, object] | None = None,
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

    def search(
        self,
        *,
        action: str | None = None,
        user_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[tuple[AuditEvent, str | None, str | None]]:
        """Newest first: (event, user email, actor email), ``offset`` rows skipped. What is
        visible follows RLS (your own events; administrators see all)."""
        subject = aliased(User)
        actor = aliased(User)
        stmt = (
            select(AuditEvent, subject.email, actor.email)
            .outerjoin(subject, subject.id == AuditEvent.user_id)
            .outerjoin(actor, actor.id == AuditEvent.actor_id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id)
            .limit(limit)
            .offset(offset)
        )
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if user_id is not None:
            stmt = stmt.where((AuditEvent.user_id == user_id) | (AuditEvent.actor_id == user_id))
        if since is not None:
            stmt = stmt.where(AuditEvent.created_at >= since)
        if until is not None:
            stmt = stmt.where(AuditEvent.created_at < until)
        return [(row[0], row[1], row[2]) for row in self.session.execute(stmt).all()]

    def actions(self) -> list[str]:
        """Every action name recorded so far (for filters)."""
        return list(
            self.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
        )
