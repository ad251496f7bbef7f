"""Sessions and their tokens.

A session is a refresh-token *family*: each refresh retires the presented token and issues its
successor; presenting a retired token again revokes the whole family (no grace: browsers hold
no refresh token, so a replay is never a reload race). A presented refresh token names its
user through one narrow definer function (migration 0013); from then on the transaction acts as
that user, like everything else here. Access tokens are short-lived JWTs naming the session, so
:meth:`SessionService.authenticate` ends with the session.

A browser holds its session through an HttpOnly cookie set by the server (0015): after sign-in
the page takes a one-time ticket (:meth:`SessionService.browser_ticket`), the browser redeems
it for the cookie's token (:meth:`~SessionService.redeem_browser_ticket`), and every page load
resumes the session with it (:meth:`~SessionService.resume_browser`). The token is not rotated
per load; it lives exactly as long as its session and is replaced when the user's role changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from jarvis.clock import Clock
from jarvis.db.tables import BrowserCredential, RefreshToken
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import AccountDisabledError, ConfigError, PermissionDeniedError, TokenError
from jarvis.identity import Principal
from jarvis.security.tokens import (
    AccessTokenCodec,
    check_refresh_token_shape,
    hash_refresh_token,
    new_refresh_token,
)
from jarvis.services.auth.devices import ago, describe_user_agent
from jarvis.services.auth.policy import clean_ip
from jarvis.services.auth.views import (
    BrowserCookie,
    IssuedSession,
    ResumedSession,
    SessionView,
    principal_of,
)
from jarvis.validation import storable_text

#: How often an active session records "last used" (bounds writes to one per minute).
TOUCH_EVERY = timedelta(seconds=60)
#: How long a browser has to redeem its sign-in ticket (the page hands it over at once).
BROWSER_TICKET_TTL = timedelta(seconds=60)


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
        self,
        principal: Principal,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        audit_as: str = "session.started",
    ) -> IssuedSession:
        """Start a new session (refresh-token family) for a user who just proved who they are.

        One audit row (``audit_as``, naming the session, IP and user agent): a password sign-in
        is recorded once, as ``login.success``, here — not again when its browser collects its
        cookie."""
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
            agent = storable_text(user_agent, 200)
            uow.audit.record(
                audit_as,
                user_id=user.id,
                target=f"session:{family}",
                ip=clean_ip(ip),
                details={"user_agent": agent} if agent else None,
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
    ) -> IssuedSession:
        """Exchange a refresh token for a new pair; the presented token is retired.

        A token that was already retired by rotation means a copy is in the wrong hands: the
        whole family (the session) is revoked at once and ``session.refresh_reuse`` is audited.
        Of two concurrent refreshes of one live token exactly one succeeds. Raises
        :class:`TokenError` otherwise.
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
            if row.revoked_at is not None:
                if row.revoked_reason == "rotated":
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
            if not repo.mark_rotated(row.id, now):
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
                )
            )
            principal = principal_of(user)
            family, expires = row.family_id, row.expires_at
            uow.commit()
        return self._issued(principal, family, new_token, expires)

    # -- browsers -------------------------------------------------------------------------------

    def browser_ticket(self, principal: Principal, session_id: uuid.UUID) -> str:
        """A one-time ticket (single use, :data:`BROWSER_TICKET_TTL`) that lets this user's
        browser collect the cookie of ``session_id`` (:meth:`redeem_browser_ticket`). Only its
        hash is stored. Raises :class:`TokenError` when the session is over."""
        now = self._clock.now()
        ticket = new_refresh_token()
        with self._uow(principal) as uow:
            found = uow.tokens.live_session(session_id, now, self._idle)
            if found is None or found[1].id != principal.user_id:
                raise TokenError()
            row, user = found
            uow.browser_credentials.add(
                BrowserCredential(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    session_id=session_id,
                    role=principal_of(user).role,
                    ticket_hash=hash_refresh_token(ticket),
                    ticket_expires_at=now + BROWSER_TICKET_TTL,
                    token_hash=None,
                    expires_at=row.expires_at,
                )
            )
            uow.commit()
        return ticket

    def redeem_browser_ticket(
        self,
        ticket: str,
        *,
        ip: str | None = None,  # noqa: ARG002 - the sign-in that issued the ticket audited it
        replaces: str | None = None,
    ) -> BrowserCookie:
        """Spend a ticket for the browser token of its session (the cookie's value, shown once;
        only its hash is stored). Tokens of that session issued for another role stop working.
        ``replaces``: the cookie the browser held until now; the session it named (if another
        one) ends, since the new cookie takes its place. An unknown, spent or expired ticket,
        or an ended session, raises :class:`TokenError`."""
        ticket = check_refresh_token_shape(ticket)
        now = self._clock.now()
        ticket_hash = hash_refresh_token(ticket)
        token = new_refresh_token()
        with self._uow() as uow:
            creds = uow.browser_credentials
            owner = creds.ticket_owner(ticket_hash)
            if owner is None:
                raise TokenError()
            uow.act_as(owner)
            cred = creds.redeem(ticket_hash, hash_refresh_token(token), now)
            if cred is None:
                uow.commit()  # an expired ticket is spent all the same
                raise TokenError()
            found = uow.tokens.live_session(cred.session_id, now, self._idle)
            if found is None:
                creds.revoke_session(cred.session_id, now)
                uow.commit()
                raise TokenError()
            creds.revoke_stale(cred.session_id, principal_of(found[1]).role, now)
            # Not audited: the sign-in that issued the ticket was (one row per sign-in).
            session_id, expires = cred.session_id, cred.expires_at
            uow.commit()
        if replaces is not None:
            self._end_replaced(replaces, keep=session_id, now=now)
        return BrowserCookie(token=token, expires_at=expires)

    def _end_replaced(self, token: str, *, keep: uuid.UUID, now: datetime) -> None:
        """The browser held another session's cookie, which its new cookie overwrites: nothing
        can resume that session any more, so it ends now rather than idling in the Account
        page's list for a week. (Part of the sign-in, which is audited.)"""
        try:
            token = check_refresh_token_shape(token)
        except TokenError:
            return
        token_hash = hash_refresh_token(token)
        with self._uow() as uow:
            creds = uow.browser_credentials
            owner = creds.token_owner(token_hash)
            if owner is None:
                return
            uow.act_as(owner)
            cred = creds.by_token(token_hash)
            if cred is None or cred.session_id == keep:
                return
            creds.revoke_session(cred.session_id, now)
            uow.tokens.revoke_family(cred.session_id, now, "replaced")
            uow.commit()

    def resume_browser(self, token: str) -> ResumedSession:
        """The live session a browser token (its cookie) belongs to, with a fresh access token;
        activity is recorded. ``reissue`` says the user's role changed since the token was
        issued: hand the browser a new one. The token itself is not rotated (a reload or
        another tab may present it at the same moment). Raises :class:`TokenError` when the
        token is unknown or replaced, or its session is over."""
        token = check_refresh_token_shape(token)
        now = self._clock.now()
        token_hash = hash_refresh_token(token)
        with self._uow() as uow:
            creds = uow.browser_credentials
            owner = creds.token_owner(token_hash)
            if owner is None:
                raise TokenError()
            uow.act_as(owner)
            cred = creds.by_token(token_hash)
            if cred is None or cred.revoked_at is not None or now >= cred.expires_at:
                raise TokenError()
            found = uow.tokens.live_session(cred.session_id, now, self._idle)
            if found is None:
                raise TokenError()
            row, user = found
            uow.tokens.touch(row.id, now, TOUCH_EVERY)
            principal = principal_of(user)
            session_id, reissue = cred.session_id, cred.role != principal.role
            uow.commit()
        return ResumedSession(
            principal=principal,
            session_id=session_id,
            access_token=self.tokens.issue(principal, session_id=session_id),
            access_expires_at=now + timedelta(seconds=self.tokens.ttl_seconds),
            reissue=reissue,
        )

    def browser_token_live(self, token: object) -> bool:
        """Whether a browser token still opens a session (without recording activity)."""
        try:
            token = check_refresh_token_shape(token)
        except TokenError:
            return False
        now = self._clock.now()
        token_hash = hash_refresh_token(token)
        with self._uow() as uow:
            owner = uow.browser_credentials.token_owner(token_hash)
            if owner is None:
                return False
            uow.act_as(owner)
            cred = uow.browser_credentials.by_token(token_hash)
            if cred is None or cred.revoked_at is not None or now >= cred.expires_at:
                return False
            return uow.tokens.live_session(cred.session_id, now, self._idle) is not None

    def end_browser(self, token: object, *, ip: str | None = None) -> bool:
        """Sign-out from a browser: end the session its token (cookie) names. False when the
        token names none (unknown, malformed); ending an ended session is harmless."""
        try:
            token = check_refresh_token_shape(token)
        except TokenError:
            return False
        now = self._clock.now()
        token_hash = hash_refresh_token(token)
        with self._uow() as uow:
            creds = uow.browser_credentials
            owner = creds.token_owner(token_hash)
            if owner is None:
                return False
            uow.act_as(owner)
            cred = creds.by_token(token_hash)
            if cred is None:
                return False
            creds.revoke_session(cred.session_id, now)
            if uow.tokens.revoke_family(cred.session_id, now, "logout"):
                uow.audit.record(
                    "logout", user_id=owner, target=f"session:{cred.session_id}", ip=clean_ip(ip)
                )
            uow.commit()
        return True

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
        """The user's live sessions (ended, revoked and expired ones are left out), this one
        first, then the most recently used."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            rows = uow.tokens.live_for_user(principal.user_id, now, self._idle)
            views = []
            seen: set[uuid.UUID] = set()
            for row in rows:
                if row.family_id in seen:  # one row per session, whatever happens to the rows
                    continue
                seen.add(row.family_id)
                last_used = row.last_used_at or row.issued_at
                views.append(
                    SessionView(
                        session_id=row.family_id,
                        user_agent=row.user_agent or "unknown device",
                        ip=str(row.ip) if row.ip else None,
                        started_at=uow.tokens.family_started(row.family_id) or row.issued_at,
                        last_used_at=last_used,
                        expires_at=row.expires_at,
                        current=row.family_id == current_session_id,
                        device=describe_user_agent(row.user_agent),
                        last_active=ago(last_used, now),
                    )
                )
        views.sort(key=lambda v: not v.current)  # stable: the rest stay most recent first
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

    def sign_out_others(self, principal: Principal, current_session_id: uuid.UUID) -> int:
        """End every session of ``principal`` except ``current_session_id`` (this browser
        stays signed in; the others are signed out at their next request). Returns how many
        sessions ended."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            families = {
                row.family_id
                for row in uow.tokens.live_for_user(principal.user_id, now, self._idle)
                if row.family_id != current_session_id
            }
            uow.tokens.revoke_user(
                principal.user_id, now, "signed_out_by_other", keep_family=current_session_id
            )
            uow.audit.record(
                "sessions.revoked_others",
                user_id=principal.user_id,
                target=f"session:{current_session_id}",
                details={"sessions": len(families)},
            )
            uow.commit()
        return len(families)

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
