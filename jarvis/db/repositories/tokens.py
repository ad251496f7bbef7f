"""Refresh tokens (only their SHA-256 hashes) grouped in families (one family = one session)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from jarvis.db.tables import RefreshToken, User


def _alive(now: datetime, idle: timedelta) -> ColumnElement[bool]:
    """SQL condition: not revoked, before the absolute expiry, used within the idle window."""
    return and_(
        RefreshToken.revoked_at.is_(None),
        RefreshToken.expires_at > now,
        func.coalesce(RefreshToken.last_used_at, RefreshToken.issued_at) > now - idle,
    )


class RefreshTokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: RefreshToken) -> None:
        self.session.add(token)
        self.session.flush()

    def owner_of(self, token_hash: str) -> uuid.UUID | None:
        """The user whose refresh token has this hash, whoever acts (narrow definer function:
        a refresh is how a browser proves who it is)."""
        value = self.session.scalar(text("select jarvis_refresh_token_user(:h)"), {"h": token_hash})
        return uuid.UUID(str(value)) if value else None

    def revoke_sessions_of(self, user_id: uuid.UUID, now: datetime, reason: str) -> int:
        """End every live token of ``user_id``: the acting user's own, or any user's for a
        verified administrator (definer function; anyone else is refused)."""
        value = self.session.scalar(
            text("select jarvis_revoke_sessions(:u, :t, :r)"),
            {"u": user_id, "t": now, "r": reason},
        )
        return int(value or 0)

    def by_hash(self, token_hash: str) -> RefreshToken | None:
        return self.session.scalars(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .execution_options(populate_existing=True)
        ).one_or_none()

    def mark_rotated(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Retire a live token. False if another transaction retired it first (lost race)."""
        result = self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="rotated", last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def successors(self, token_id: uuid.UUID) -> list[RefreshToken]:
        """The tokens issued in exchange for ``token_id`` (normally one; more after a race)."""
        return list(
            self.session.scalars(
                select(RefreshToken)
                .where(RefreshToken.parent_id == token_id)
                .execution_options(populate_existing=True)
            )
        )

    def revoke_token(self, token_id: uuid.UUID, now: datetime, reason: str) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )

    def revoke_family(self, family_id: uuid.UUID, now: datetime, reason: str) -> int:
        result = self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def revoke_user(
        self,
        user_id: uuid.UUID,
        now: datetime,
        reason: str,
        *,
        keep_family: uuid.UUID | None = None,
    ) -> int:
        """Revoke every live token of a user (optionally all but one session). Returns sessions."""
        conditions = [RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)]
        if keep_family is not None:
            conditions.append(RefreshToken.family_id != keep_family)
        result = self.session.execute(
            update(RefreshToken)
            .where(*conditions)
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def live_session(
        self, family_id: uuid.UUID, now: datetime, idle: timedelta
    ) -> tuple[RefreshToken, User] | None:
        """The live token of a session and its (active) user, or None."""
        row = self.session.execute(
            select(RefreshToken, User)
            .join(User, User.id == RefreshToken.user_id)
            .where(RefreshToken.family_id == family_id, _alive(now, idle), User.is_active.is_(True))
            .limit(1)
        ).first()
        return (row[0], row[1]) if row else None

    def touch(self, token_id: uuid.UUID, now: datetime, every: timedelta) -> None:
        """Record activity on a session at most once per ``every`` (keeps the idle window open)."""
        self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.revoked_at.is_(None),
                or_(RefreshToken.last_used_at.is_(None), RefreshToken.last_used_at < now - every),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )

    def live_for_user(
        self, user_id: uuid.UUID, now: datetime, idle: timedelta
    ) -> list[RefreshToken]:
        """One row per active session of a user, most recently used first."""
        return list(
            self.session.scalars(
                select(RefreshToken)
                .where(RefreshToken.user_id == user_id, _alive(now, idle))
                .order_by(func.coalesce(RefreshToken.last_used_at, RefreshToken.issued_at).desc())
            )
        )

    def family_started(self, family_id: uuid.UUID) -> datetime | None:
        return self.session.scalar(
            select(func.min(RefreshToken.issued_at)).where(RefreshToken.family_id == family_id)
        )

    def family(self, family_id: uuid.UUID) -> list[RefreshToken]:
        """The session's tokens, oldest first; tokens issued at the same instant in the order
        they were issued with each other (a parent before its successors)."""
        rows = list(
            self.session.scalars(
                select(RefreshToken)
                .where(RefreshToken.family_id == family_id)
                .order_by(RefreshToken.issued_at, RefreshToken.id)
                .execution_options(populate_existing=True)
            )
        )
        by_id = {r.id: r for r in rows}

        def depth(row: RefreshToken) -> int:
            n, parent = 0, row.parent_id
            while parent in by_id and n < len(rows):
                n, parent = n + 1, by_id[parent].parent_id
            return n

        return sorted(rows, key=lambda r: (r.issued_at, depth(r)))

    def purge_ended(self, now: datetime) -> int:
        """Delete refresh tokens past their expiry and browser credentials of ended sessions
        (the owner's narrow function ``jarvis_sign_in_purge``, 0021); how many rows went."""
        value = self.session.scalar(text("select jarvis_sign_in_purge(:now)"), {"now": now})
        return int(value or 0)
