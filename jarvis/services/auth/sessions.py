"""Sessions and their tokens.

A session is a refresh-token *family*: each refresh retires the presented token and issues its
successor; presenting a retired token again revokes the whole family — unless it is a reload
race (see :data:`REFRESH_RACE_GRACE`). A presented refresh token names its user through one
narrow definer function (migration 0013); from then on the transaction acts as that user, like
everything else here. Access tokens are short-lived JWTs
naming the session, so :meth:`SessionService.authenticate` ends with the session.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.repositories.tokens import RefreshTokenRepository
from jarvis.db.tables import RefreshToken
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import AccountDisabledError, ConfigError, PermissionDeniedError, TokenError
from jarvis.identity import Principal
from jarvis.security.tokens import (
    AccessTokenCodec,
    check_refresh_token_shape,
    hash_refresh_token,
    new_refresh_token,
)
from jarvis.services.auth.policy import clean_ip
from jarvis.services.auth.views import IssuedSession, SessionView, principal_of
from jarvis.validation import storable_text

#: How often an active session records "last used" (bounds writes to one per minute).
TOUCH_EVERY = timedelta(seconds=60)
#: A browser stores a rotated cookie a moment after the refresh (and then confirms it). A
#: rotated token presented again within this time, while none of its successors was confirmed
#: by the browser or rotated in turn, is a reload race (two quick reloads, tabs restored at
#: once): it gets another successor instead of revoking the session.
REFRESH_RACE_GRACE = timedelta(seconds=30)


class SessionService:
    """Open, refresh, check and end sessions; access tokens for live sessions."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        tokens: AccessTokenCodec | None = None,
        refresh_idle_ttl_seconds: int = 7 * 86400,
        refresh_absolute_ttl_seconds: int = 30 * 86400,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._tokens = tokens
        self._idle = timedelta(seconds=refresh_idle_ttl_seconds)
        self._absolute = timedelta(seconds=refresh_absolute_ttl_seconds)

    @property
    def tokens(self) -> AccessTokenCodec:
        """The access-token codec (:class:`ConfigError` when no JWT secret is configured)."""
        if self._tokens is None:
            raise ConfigError("Access tokens are not configured (JARVIS_JWT_SECRET).")
        return self._tokens

    # -- starting and refreshing ------------------------------------------------------------

    def open(
        self, principal: Principal, *, ip: str | None = None, user_agent: str | None = None
    ) -> IssuedSession:
        """Start a new session (refresh-token family) for a user who just proved who they are."""
        now = self._clock.now()
        family = uuid.uuid4()
        refresh = new_refresh_token()
        expires = now + self._absolute
        with self._uow.for_user_id(principal.user_id, principal.role) as uow:
            user = uow.users.get(principal.user_id)
            if user is None or not user.is_active:
                raise AccountDisabledError()
            principal = principal_of(user)
            uow.tokens.add(
                RefreshToken(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    family_id=family,
                    token_hash=hash_refresh_token(refresh),
                    parent_id=None,
                    issued_at=now,
                    expires_at=expires,
                    user_agent=storable_text(user_agent, 512) or None,
                    ip=clean_ip(ip),
                )
            )
            uow.audit.record(
                "session.started", user_id=user.id, target=f"session:{family}", ip=clean_ip(ip)
            )
            uow.commit()
        return self._issued(principal, family, refresh, expires)

    def _issued(
        self, principal: Principal, family: uuid.UUID, refresh: str, expires: datetime
    ) -> IssuedSession:
        access = self.tokens.issue(principal, session_id=family)
        return IssuedSession(
            principal=principal,
            session_id=family,
            access_token=access,
            access_expires_at=self._clock.now() + timedelta(seconds=self.tokens.ttl_seconds),
            refresh_token=refresh,
            refresh_expires_at=expires,
        )

    def refresh(
        self,
        refresh_token: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        delivered: bool = False,
    ) -> IssuedSession:
        """Exchange a refresh token for a new pair; the presented token is retired.

        A token that was already retired by rotation means a copy is in the wrong hands: the
        whole family is revoked and ``session.refresh_reuse`` is audited — except for a reload
        race (:meth:`_is_reload_race`), which gets another successor and is audited as
        ``session.refresh_retry``. Of two concurrent refreshes of one live token exactly one
        succeeds. Raises :class:`TokenError` otherwise.

        ``delivered``: the new token reaches its client in this very answer (an API client,
        not a browser cookie written later), so it is confirmed at once: there is no reload
        race, and presenting the replaced token again is always reuse.
        """
        token = check_refresh_token_shape(refresh_token)
        now = self._clock.now()
        new_token = new_refresh_token()
        token_hash = hash_refresh_token(token)
        with self._uow() as uow:
            repo = uow.tokens
            owner = repo.owner_of(token_hash)
            if owner is None:
                raise TokenError()
            uow.act_as(owner)
            row = repo.by_hash(token_hash)
            if row is None:
                raise TokenError()
            retry = False
            if row.revoked_at is not None:
                if row.revoked_reason != "rotated":
                    raise TokenError()
                if not self._is_reload_race(repo, row, now):
                    revoked = repo.revoke_family(row.family_id, now, "reuse")
                    uow.audit.record(
                        "session.refresh_reuse",
                        user_id=row.user_id,
                        target=f"session:{row.family_id}",
                        ip=clean_ip(ip),
                        details={"revoked_tokens": revoked},
                    )
                    uow.commit()
                    raise TokenError()
                retry = True
            last = row.last_used_at or row.issued_at
            if now >= row.expires_at or now >= last + self._idle:
                repo.revoke_family(row.family_id, now, "expired")
                uow.commit()
                raise TokenError()
            user = uow.users.get(row.user_id)
            if user is None or not user.is_active:
                repo.revoke_family(row.family_id, now, "inactive")
                uow.commit()
                raise TokenError()
            if retry:
                uow.audit.record(
                    "session.refresh_retry",
                    user_id=row.user_id,
                    target=f"session:{row.family_id}",
                    ip=clean_ip(ip),
                )
            elif not repo.mark_rotated(row.id, now):
                # Another refresh of this very token committed while we were here: it won.
                raise TokenError()
            repo.add(
                RefreshToken(
                    id=uuid.uuid4(),
                    user_id=row.user_id,
                    family_id=row.family_id,
                    token_hash=hash_refresh_token(new_token),
                    parent_id=row.id,
                    issued_at=now,
                    expires_at=row.expires_at,
                    user_agent=storable_text(user_agent, 512) or row.user_agent,
                    ip=clean_ip(ip) or (str(row.ip) if row.ip else None),
                    confirmed_at=now if delivered else None,
                )
            )
            principal = principal_of(user)
            family, expires = row.family_id, row.expires_at
            uow.commit()
        return self._issued(principal, family, new_token, expires)

    @staticmethod
    def _is_reload_race(repo: RefreshTokenRepository, row: RefreshToken, now: datetime) -> bool:
        """A rotated token presented again is a benign race (not theft) only while the browser
        never received its successor: rotated less than :data:`REFRESH_RACE_GRACE` ago, and
        every successor still live (never rotated itself) and never confirmed by a browser.

        (``last_used_at`` of a successor says nothing here: session checks touch it.)"""
        if row.revoked_at is None or now - row.revoked_at >= REFRESH_RACE_GRACE:
            return False
        successors = repo.successors(row.id)
        return bool(successors) and all(
            s.revoked_at is None and s.confirmed_at is None for s in successors
        )

    def confirm(self, refresh_token: str) -> bool:
        """The browser acknowledged it stored this refresh token (its cookie): from now on,
        presenting the token it replaced is reuse. False if unknown or already confirmed."""
        try:
            token = check_refresh_token_shape(refresh_token)
        except TokenError:
            return False
        now = self._clock.now()
        token_hash = hash_refresh_token(token)
        with self._uow() as uow:
            owner = uow.tokens.owner_of(token_hash)
            if owner is None:
                return False
            uow.act_as(owner)
            confirmed = uow.tokens.confirm(token_hash, now)
            uow.commit()
        return confirmed

    # -- checking -------------------------------------------------------------------------------

    def check(self, user_id: uuid.UUID, session_id: uuid.UUID) -> Principal:
        """The user of a live session, fresh from the database (role changes and deactivation
        apply at once); records activity. Raises :class:`TokenError` when the session is over."""
        now = self._clock.now()
        with self._uow.for_user_id(user_id) as uow:
            found = uow.tokens.live_session(session_id, now, self._idle)
            if found is None:
                raise TokenError()
            token, user = found
            uow.tokens.touch(token.id, now, TOUCH_EVERY)
            principal = principal_of(user)
            uow.commit()
        return principal

    def authenticate(self, access_token: str) -> Principal:
        """The user of a valid access token whose session is still live (else TokenError)."""
        claims = self.tokens.decode(access_token)
        if claims.session_id is None:
            raise TokenError()
        return self.check(claims.user_id, claims.session_id)

    def logout_access_token(self, access_token: str, *, ip: str | None = None) -> None:
        """End the session an API client's access token belongs to (``POST /auth/logout``)."""
        claims = self.tokens.decode(access_token)
        if claims.session_id is None:
            raise TokenError()
        principal = self.check(claims.user_id, claims.session_id)
        self.logout(principal, claims.session_id, ip=ip)

    def issue_access_token(self, principal: Principal, session_id: uuid.UUID) -> str:
        """A fresh access token for a live session (the caller checked it this request)."""
        return self.tokens.issue(principal, session_id=session_id)

    # -- listing and ending ---------------------------------------------------------------------

    def logout(self, principal: Principal, session_id: uuid.UUID, *, ip: str | None = None) -> None:
        """End one session of ``principal`` (its refresh tokens stop working at once)."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            uow.tokens.revoke_family(session_id, now, "logout")
            uow.audit.record(
                "logout",
                user_id=principal.user_id,
                target=f"session:{session_id}",
                ip=clean_ip(ip),
            )
            uow.commit()

    def list_active(
        self, principal: Principal, current_session_id: uuid.UUID | None = None
    ) -> list[SessionView]:
        """The user's active sessions, most recently used first."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            rows = uow.tokens.live_for_user(principal.user_id, now, self._idle)
            views = []
            seen: set[uuid.UUID] = set()
            for row in rows:
                if row.family_id in seen:  # sibling tokens of a reload race: one session
                    continue
                seen.add(row.family_id)
                views.append(
                    SessionView(
                        session_id=row.family_id,
                        user_agent=row.user_agent or "unknown device",
                        ip=str(row.ip) if row.ip else None,
                        started_at=uow.tokens.family_started(row.family_id) or row.issued_at,
                        last_used_at=row.last_used_at or row.issued_at,
                        expires_at=row.expires_at,
                        current=row.family_id == current_session_id,
                    )
                )
        return views

    def revoke(self, principal: Principal, session_id: uuid.UUID) -> None:
        """End one of your own sessions (another browser or device)."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            count = uow.tokens.revoke_family(session_id, now, "revoked")
            if count == 0:
                raise TokenError("That session has already ended.")
            uow.audit.record(
                "session.revoked", user_id=principal.user_id, target=f"session:{session_id}"
            )
            uow.commit()

    def sign_out_everywhere(self, principal: Principal) -> int:
        """End every session of ``principal`` (this one included). Returns how many ended."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            count = uow.tokens.revoke_user(principal.user_id, now, "signed_out_everywhere")
            uow.audit.record(
                "sessions.revoked_all", user_id=principal.user_id, details={"sessions": count}
            )
            uow.commit()
        return count

    def revoke_all_for(self, actor: Principal, user_id: uuid.UUID, reason: str) -> int:
        """End every session of ``user_id`` (the user themself or an administrator)."""
        if not (actor.is_admin or actor.user_id == user_id):
            raise PermissionDeniedError()
        now = self._clock.now()
        # Administrators cannot read other users' tokens under row-level security: a definer
        # function ends them, after the database checked the actor is that user or an admin.
        with self._uow(actor) as uow:
            count = uow.tokens.revoke_sessions_of(user_id, now, reason[:64])
            uow.commit()
        return count
