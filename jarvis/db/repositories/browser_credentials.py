"""Browser credentials (0015): one-time tickets and the HttpOnly cookie's session tokens, only
as SHA-256 hashes. Rows are the user's own (row-level security); the lookups before the caller
is known go through the owner's narrow functions ``jarvis_browser_ticket_user`` and
``jarvis_browser_token_user``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from jarvis.db.tables import BrowserCredential


class BrowserCredentialRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, credential: BrowserCredential) -> None:
        self.session.add(credential)
        self.session.flush()

    def ticket_owner(self, ticket_hash: str) -> uuid.UUID | None:
        """The user a ticket was issued to, whoever acts (definer function)."""
        value = self.session.scalar(
            text("select jarvis_browser_ticket_user(:h)"), {"h": ticket_hash}
        )
        return uuid.UUID(str(value)) if value else None

    def token_owner(self, token_hash: str) -> uuid.UUID | None:
        """The user a browser token belongs to, whoever acts (definer function)."""
        value = self.session.scalar(text("select jarvis_browser_token_user(:h)"), {"h": token_hash})
        return uuid.UUID(str(value)) if value else None

    def redeem(self, ticket_hash: str, token_hash: str, now: datetime) -> BrowserCredential | None:
        """Spend a ticket: an unspent, unexpired one becomes the holder of ``token_hash``
        (atomically: of two redemptions one wins). An expired ticket is spent for nothing.
        Returns the credential, or None."""
        row = self.session.execute(
            update(BrowserCredential)
            .where(
                BrowserCredential.ticket_hash == ticket_hash,
                BrowserCredential.token_hash.is_(None),
                BrowserCredential.revoked_at.is_(None),
                BrowserCredential.ticket_expires_at > now,
            )
            .values(ticket_hash=None, token_hash=token_hash, redeemed_at=now)
            .returning(BrowserCredential.id)
            .execution_options(synchronize_session=False)
        ).first()
        if row is None:
            self.session.execute(
                update(BrowserCredential)
                .where(BrowserCredential.ticket_hash == ticket_hash)
                .values(ticket_hash=None, revoked_at=now)
                .execution_options(synchronize_session=False)
            )
            return None
        return self.get(row[0])

    def get(self, credential_id: uuid.UUID) -> BrowserCredential | None:
        return self.session.scalars(
            select(BrowserCredential)
            .where(BrowserCredential.id == credential_id)
            .execution_options(populate_existing=True)
        ).one_or_none()

    def by_token(self, token_hash: str) -> BrowserCredential | None:
        return self.session.scalars(
            select(BrowserCredential)
            .where(BrowserCredential.token_hash == token_hash)
            .execution_options(populate_existing=True)
        ).one_or_none()

    def revoke_stale(self, session_id: uuid.UUID, role: str, now: datetime) -> int:
        """Retire the session's tokens and tickets issued for another role (a role change:
        the one just issued replaces them)."""
        result = self.session.execute(
            update(BrowserCredential)
            .where(
                BrowserCredential.session_id == session_id,
                BrowserCredential.role != role,
                BrowserCredential.revoked_at.is_(None),
            )
            .values(revoked_at=now, ticket_hash=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def revoke_session(self, session_id: uuid.UUID, now: datetime) -> int:
        """Retire every browser token and ticket of a session (it ended)."""
        result = self.session.execute(
            update(BrowserCredential)
            .where(
                BrowserCredential.session_id == session_id,
                BrowserCredential.revoked_at.is_(None),
            )
            .values(revoked_at=now, ticket_hash=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
