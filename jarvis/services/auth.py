"""Accounts and sessions: registration (first user becomes admin), login with throttling,
access / refresh tokens, sessions a user can list and revoke, password changes.

Users and sessions live in PostgreSQL only. Lookups before a user is known (login by email,
refresh by token hash) run in the narrow ``auth`` row-level-security scope; everything after
runs as the user. A session is a refresh-token *family*: each refresh retires the presented
token and issues its successor; presenting a retired token again revokes the whole family —
unless it is a reload race (see :data:`REFRESH_RACE_GRACE`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

from jarvis.clock import Clock
from jarvis.db.repositories.audit import AuditRepository
from jarvis.db.repositories.rate_limits import LockoutRepository
from jarvis.db.repositories.tokens import RefreshTokenRepository
from jarvis.db.repositories.users import AppSettingsRepository, UserRepository
from jarvis.db.tables import RefreshToken, User
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import (
    AccountDisabledError,
    AccountLockedError,
    ConfigError,
    ConflictError,
    InvalidCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    TokenError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.security.passwords import MAX_LENGTH, PasswordHasher, validate_password
from jarvis.security.rate_limits import RateLimiter
from jarvis.security.tokens import (
    AccessTokenCodec,
    check_refresh_token_shape,
    hash_refresh_token,
    new_refresh_token,
)

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
SIGNUP_OPEN_KEY = "signup_open"
#: How often an active session records "last used" (bounds writes to one per minute).
TOUCH_EVERY = timedelta(seconds=60)
#: A browser stores a rotated cookie a moment after the refresh (and then confirms it). A
#: rotated token presented again within this time, while none of its successors was confirmed
#: by the browser or rotated in turn, is a reload race (two quick reloads, tabs restored at
#: once): it gets another successor instead of revoking the session.
REFRESH_RACE_GRACE = timedelta(seconds=30)


def normalise_email(email: str) -> str:
    email = (email or "").strip()
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise ValidationError("Enter a valid email address.", field="email")
    return email


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        email=user.email,
        role="admin" if user.role == "admin" else "user",
        display_name=user.display_name,
    )


def describe_wait(seconds: float) -> str:
    """'45 seconds', '2 minutes', '1 hour' — for "try again in ..." messages."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return f"{hours} hour{'s' if hours != 1 else ''}"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Sign-in throttling. Per account: after ``account_threshold`` failures in a row the
    account locks for ``lockout_base_seconds``, doubling with each further lockout up to
    ``lockout_max_seconds``; failures older than ``forget_after_seconds`` are forgotten.
    Per client IP: at most ``ip_limit`` attempts per ``ip_window_seconds``."""

    account_threshold: int = 5
    lockout_base_seconds: int = 60
    lockout_max_seconds: int = 3600
    forget_after_seconds: int = 86400
    ip_limit: int = 30
    ip_window_seconds: int = 300
    signups_per_ip: int = 10
    signup_window_seconds: int = 3600

    def lockout_seconds(self, lockouts: int) -> int:
        return int(
            min(self.lockout_base_seconds * 2 ** max(lockouts - 1, 0), self.lockout_max_seconds)
        )


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """What a successful sign-in or refresh hands the client. ``refresh_token`` is shown once."""

    principal: Principal
    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionView:
    """One active session of a user (a browser or device), for the account page."""

    session_id: uuid.UUID
    user_agent: str
    ip: str | None
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool


def _clean_ip(ip: str | None) -> str | None:
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


class AuthService:
    """Registration, password login, sessions and their tokens."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        *,
        tokens: AccessTokenCodec | None = None,
        limiter: RateLimiter | None = None,
        policy: LoginPolicy | None = None,
        refresh_idle_ttl_seconds: int = 7 * 86400,
        refresh_absolute_ttl_seconds: int = 30 * 86400,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._tokens = tokens
        self._limiter = limiter or RateLimiter(uow, clock)
        self.policy = policy or LoginPolicy()
        self._idle = timedelta(seconds=refresh_idle_ttl_seconds)
        self._absolute = timedelta(seconds=refresh_absolute_ttl_seconds)

    # -- registration --------------------------------------------------------------------------

    def has_users(self) -> bool:
        """True once any account exists (the first visit offers to create the admin)."""
        with self._uow(scope="auth") as uow:
            return UserRepository(uow.session).count() > 0

    def signup_open(self) -> bool:
        """Whether people may register themselves (always true before the first user)."""
        with self._uow(scope="auth") as uow:
            if UserRepository(uow.session).count() == 0:
                return True
            return bool(AppSettingsRepository(uow.session).get(SIGNUP_OPEN_KEY, False))

    def set_signup_open(self, actor: Principal, is_open: bool) -> None:
        """Open or close self-service sign-up (administrators only)."""
        if not actor.is_admin:
            raise PermissionDeniedError()
        with self._uow(actor) as uow:
            AppSettingsRepository(uow.session).set(SIGNUP_OPEN_KEY, bool(is_open))
            AuditRepository(uow.session).record(
                "settings.signup_changed", user_id=actor.user_id, details={"open": bool(is_open)}
            )
            uow.commit()

    def register(
        self,
        email: str,
        password: str,
        display_name: str = "",
        *,
        role: str | None = None,
        actor: Principal | None = None,
        ip: str | None = None,
    ) -> Principal:
        """Create an account. The first account is an admin; later ones need open sign-up
        (or an admin ``actor``). Self-service sign-ups are limited per client ``ip``."""
        email = normalise_email(email)
        validate_password(password)
        ip = _clean_ip(ip)
        if ip is not None and not (actor and actor.is_admin):
            decision = self._limiter.hit(
                f"signup:ip:{ip}", self.policy.signups_per_ip, self.policy.signup_window_seconds
            )
            if not decision.allowed:
                raise RateLimitError(
                    "Too many new accounts from your network. "
                    f"Try again in {describe_wait(decision.retry_after)}.",
                    retry_after=decision.retry_after,
                )
        display_name = (display_name or "").strip()[:200] or email.split("@")[0]
        password_hash = self._hasher.hash(password)
        with self._uow(scope="auth") as uow:
            users = UserRepository(uow.session)
            users.lock_registrations()
            first = users.count() == 0
            admin_actor = bool(actor and actor.is_admin)
            signup = bool(AppSettingsRepository(uow.session).get(SIGNUP_OPEN_KEY, False))
            if not first and not admin_actor and not signup:
                raise PermissionDeniedError(
                    "Sign-up is closed. Ask an administrator for an account."
                )
            if users.by_email(email) is not None:
                raise ConflictError("An account with this email already exists.")
            if role not in (None, "admin", "user"):
                raise ValidationError("Role must be admin or user.", field="role")
            if role == "admin" and not first and not (actor and actor.is_admin):
                raise PermissionDeniedError()
            user = User(
                id=uuid.uuid4(),
                email=email,
                display_name=display_name,
                password_hash=password_hash,
                role="admin" if first else (role or "user"),
            )
            users.add(user)
            AuditRepository(uow.session).record(
                "user.registered",
                user_id=user.id,
                actor_id=actor.user_id if actor else user.id,
                details={"role": user.role},
            )
            principal = principal_of(user)
            uow.commit()
        return principal

    # -- login ---------------------------------------------------------------------------------

    def login(
        self, email: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> Principal:
        """Check a password, with throttling per client IP and per account.

        Unknown email and wrong password raise the same :class:`InvalidCredentialsError` after
        the same work (a dummy hash is verified for unknown emails). Repeated failures lock the
        login name, whether or not it exists (:class:`AccountLockedError` says for how long).
        """
        ip = _clean_ip(ip)
        password = password or ""
        key = (email or "").strip().lower()[:320]
        now = self._clock.now()
        if ip is not None:
            decision = self._limiter.hit(
                f"login:ip:{ip}", self.policy.ip_limit, self.policy.ip_window_seconds
            )
            if not decision.allowed:
                self._audit_anonymous("login.throttled", ip, {"scope": "ip"})
                raise RateLimitError(
                    "Too many sign-in attempts from your network. "
                    f"Try again in {describe_wait(decision.retry_after)}.",
                    retry_after=decision.retry_after,
                )
        if len(password) > MAX_LENGTH:
            # Refused before any hashing: this says nothing about the account.
            raise ValidationError(
                f"Password must be at most {MAX_LENGTH} characters.", field="password"
            )
        with self._uow(scope="auth") as uow:
            audit = AuditRepository(uow.session)
            wait = self._lock_remaining(uow, key)
            if wait is not None:
                audit.record("login.failure", user_id=None, details={"reason": "locked"}, ip=ip)
                uow.commit()
                raise self._locked(wait)
            users = UserRepository(uow.session)
            user = users.by_email(key)
            if user is None:
                self._hasher.spend_dummy(password)
                audit.record("login.failure", user_id=None, details={"reason": "unknown"}, ip=ip)
                self._failed(uow, key, None, ip)
            if not self._hasher.verify(user.password_hash, password):
                audit.record(
                    "login.failure", user_id=user.id, details={"reason": "password"}, ip=ip
                )
                self._failed(uow, key, user.id, ip)
            if not user.is_active:
                audit.record(
                    "login.failure", user_id=user.id, details={"reason": "inactive"}, ip=ip
                )
                uow.commit()
                raise AccountDisabledError()
            if self._hasher.needs_rehash(user.password_hash):
                # The parameters changed since this hash was made: upgrade it (password known).
                with contextlib.suppress(ValidationError):  # a legacy password outside 8-1024
                    user.password_hash = self._hasher.hash(password)
            LockoutRepository(uow.session).clear(key)
            users.touch_login(user, now)
            audit.record(
                "login.success",
                user_id=user.id,
                ip=ip,
                details={"user_agent": (user_agent or "")[:200]},
            )
            principal = principal_of(user)
            uow.commit()
        return principal

    def _failed(
        self, uow: UnitOfWork, key: str, user_id: uuid.UUID | None, ip: str | None
    ) -> NoReturn:
        """Count a failure for ``key``; lock it when the threshold is reached. Always raises."""
        seconds = self._count_failure(uow, key, user_id, ip)
        uow.commit()
        if seconds is not None:
            raise self._locked(seconds)
        raise InvalidCredentialsError()

    def _count_failure(
        self, uow: UnitOfWork, key: str, user_id: uuid.UUID | None, ip: str | None
    ) -> int | None:
        """Add one failure to ``key`` (auth scope); the lockout length if this one locks it."""
        now = self._clock.now()
        row = LockoutRepository(uow.session).for_update(key)
        forget = timedelta(seconds=self.policy.forget_after_seconds)
        if row.last_failure_at is not None and now - row.last_failure_at > forget:
            row.failures, row.lockouts = 0, 0
        row.failures += 1
        row.last_failure_at = now
        if row.failures < self.policy.account_threshold:
            return None
        row.lockouts += 1
        row.failures = 0
        seconds = self.policy.lockout_seconds(row.lockouts)
        row.locked_until = now + timedelta(seconds=seconds)
        AuditRepository(uow.session).record(
            "login.lockout",
            user_id=user_id,
            ip=ip,
            details={"seconds": seconds, "lockouts": row.lockouts},
        )
        return seconds

    @staticmethod
    def _locked(seconds: float) -> AccountLockedError:
        return AccountLockedError(
            f"Too many failed sign-in attempts. Try again in {describe_wait(seconds)}.",
            retry_after=float(seconds),
        )

    def _lock_remaining(self, uow: UnitOfWork, key: str) -> float | None:
        lock = LockoutRepository(uow.session).get(key)
        now = self._clock.now()
        if lock is not None and lock.locked_until is not None and lock.locked_until > now:
            return (lock.locked_until - now).total_seconds()
        return None

    def _audit_anonymous(self, action: str, ip: str | None, details: dict[str, object]) -> None:
        with self._uow(scope="auth") as uow:
            AuditRepository(uow.session).record(action, user_id=None, ip=ip, details=details)
            uow.commit()

    def sign_in(
        self, email: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> IssuedSession:
        """:meth:`login` and :meth:`open_session` in one step."""
        principal = self.login(email, password, ip=ip, user_agent=user_agent)
        return self.open_session(principal, ip=ip, user_agent=user_agent)

    # -- sessions ------------------------------------------------------------------------------

    @property
    def tokens(self) -> AccessTokenCodec:
        if self._tokens is None:
            raise ConfigError("Access tokens are not configured (JARVIS_JWT_SECRET).")
        return self._tokens

    def open_session(
        self, principal: Principal, *, ip: str | None = None, user_agent: str | None = None
    ) -> IssuedSession:
        """Start a new session (refresh-token family) for a user who just proved who they are."""
        now = self._clock.now()
        family = uuid.uuid4()
        refresh = new_refresh_token()
        expires = now + self._absolute
        with self._uow(scope="auth") as uow:
            user = UserRepository(uow.session).get(principal.user_id)
            if user is None or not user.is_active:
                raise AccountDisabledError()
            principal = principal_of(user)
            RefreshTokenRepository(uow.session).add(
                RefreshToken(
                    id=uuid.uuid4(),
                    user_id=user.id,
                    family_id=family,
                    token_hash=hash_refresh_token(refresh),
                    parent_id=None,
                    issued_at=now,
                    expires_at=expires,
                    user_agent=(user_agent or "")[:512] or None,
                    ip=_clean_ip(ip),
                )
            )
            AuditRepository(uow.session).record(
                "session.started", user_id=user.id, target=f"session:{family}", ip=_clean_ip(ip)
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
        self, refresh_token: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> IssuedSession:
        """Exchange a refresh token for a new pair; the presented token is retired.

        A token that was already retired by rotation means a copy is in the wrong hands: the
        whole family is revoked and ``session.refresh_reuse`` is audited — except for a reload
        race (:meth:`_is_reload_race`), which gets another successor and is audited as
        ``session.refresh_retry``. Of two concurrent refreshes of one live token exactly one
        succeeds. Raises :class:`TokenError` otherwise.
        """
        token = check_refresh_token_shape(refresh_token)
        now = self._clock.now()
        new_token = new_refresh_token()
        with self._uow(scope="auth") as uow:
            repo = RefreshTokenRepository(uow.session)
            row = repo.by_hash(hash_refresh_token(token))
            if row is None:
                raise TokenError()
            retry = False
            if row.revoked_at is not None:
                if row.revoked_reason != "rotated":
                    raise TokenError()
                if not self._is_reload_race(repo, row, now):
                    revoked = repo.revoke_family(row.family_id, now, "reuse")
                    AuditRepository(uow.session).record(
                        "session.refresh_reuse",
                        user_id=row.user_id,
                        target=f"session:{row.family_id}",
                        ip=_clean_ip(ip),
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
            user = UserRepository(uow.session).get(row.user_id)
            if user is None or not user.is_active:
                repo.revoke_family(row.family_id, now, "inactive")
                uow.commit()
                raise TokenError()
            if retry:
                AuditRepository(uow.session).record(
                    "session.refresh_retry",
                    user_id=row.user_id,
                    target=f"session:{row.family_id}",
                    ip=_clean_ip(ip),
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
                    user_agent=(user_agent or "")[:512] or row.user_agent,
                    ip=_clean_ip(ip) or (str(row.ip) if row.ip else None),
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

    def confirm_refresh_token(self, refresh_token: str) -> bool:
        """The browser acknowledged it stored this refresh token (its cookie): from now on,
        presenting the token it replaced is reuse. False if unknown or already confirmed."""
        try:
            token = check_refresh_token_shape(refresh_token)
        except TokenError:
            return False
        now = self._clock.now()
        with self._uow(scope="auth") as uow:
            confirmed = RefreshTokenRepository(uow.session).confirm(hash_refresh_token(token), now)
            uow.commit()
        return confirmed

    def check_session(self, user_id: uuid.UUID, session_id: uuid.UUID) -> Principal:
        """The user of a live session, fresh from the database (role changes and deactivation
        apply at once); records activity. Raises :class:`TokenError` when the session is over."""
        now = self._clock.now()
        with self._uow.for_user_id(user_id) as uow:
            repo = RefreshTokenRepository(uow.session)
            found = repo.live_session(session_id, now, self._idle)
            if found is None:
                raise TokenError()
            token, user = found
            repo.touch(token.id, now, TOUCH_EVERY)
            principal = principal_of(user)
            uow.commit()
        return principal

    def authenticate(self, access_token: str) -> Principal:
        """The user of a valid access token whose session is still live (else TokenError)."""
        claims = self.tokens.decode(access_token)
        if claims.session_id is None:
            raise TokenError()
        return self.check_session(claims.user_id, claims.session_id)

    def issue_access_token(self, principal: Principal, session_id: uuid.UUID) -> str:
        """A fresh access token for a live session (the caller checked it this request)."""
        return self.tokens.issue(principal, session_id=session_id)

    def logout(self, principal: Principal, session_id: uuid.UUID, *, ip: str | None = None) -> None:
        """End one session of ``principal`` (its refresh tokens stop working at once)."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            RefreshTokenRepository(uow.session).revoke_family(session_id, now, "logout")
            AuditRepository(uow.session).record(
                "logout",
                user_id=principal.user_id,
                target=f"session:{session_id}",
                ip=_clean_ip(ip),
            )
            uow.commit()

    def list_sessions(
        self, principal: Principal, current_session_id: uuid.UUID | None = None
    ) -> list[SessionView]:
        """The user's active sessions, most recently used first."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            repo = RefreshTokenRepository(uow.session)
            rows = repo.live_for_user(principal.user_id, now, self._idle)
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
                        started_at=repo.family_started(row.family_id) or row.issued_at,
                        last_used_at=row.last_used_at or row.issued_at,
                        expires_at=row.expires_at,
                        current=row.family_id == current_session_id,
                    )
                )
        return views

    def revoke_session(self, principal: Principal, session_id: uuid.UUID) -> None:
        """End one of your own sessions (another browser or device)."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            count = RefreshTokenRepository(uow.session).revoke_family(session_id, now, "revoked")
            if count == 0:
                raise TokenError("That session has already ended.")
            AuditRepository(uow.session).record(
                "session.revoked", user_id=principal.user_id, target=f"session:{session_id}"
            )
            uow.commit()

    def sign_out_everywhere(self, principal: Principal) -> int:
        """End every session of ``principal`` (this one included). Returns how many ended."""
        now = self._clock.now()
        with self._uow(principal) as uow:
            count = RefreshTokenRepository(uow.session).revoke_user(
                principal.user_id, now, "signed_out_everywhere"
            )
            AuditRepository(uow.session).record(
                "sessions.revoked_all", user_id=principal.user_id, details={"sessions": count}
            )
            uow.commit()
        return count

    def revoke_sessions_for(self, actor: Principal, user_id: uuid.UUID, reason: str) -> int:
        """End every session of ``user_id`` (the user themself or an administrator)."""
        if not (actor.is_admin or actor.user_id == user_id):
            raise PermissionDeniedError()
        now = self._clock.now()
        # Administrators cannot read other users' tokens under row-level security; this one
        # bulk revocation runs in the auth scope after the permission check above.
        with self._uow(scope="auth") as uow:
            count = RefreshTokenRepository(uow.session).revoke_user(user_id, now, reason[:64])
            uow.commit()
        return count

    def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        keep_session_id: uuid.UUID | None = None,
    ) -> int:
        """Change your password (the current one is required); every other session ends.
        Returns how many sessions were ended."""
        validate_password(new_password)
        now = self._clock.now()
        # Guessing the current password from a hijacked session counts towards the lockout.
        key = principal.email.strip().lower()[:320]
        with self._uow(scope="auth") as uow:
            wait = self._lock_remaining(uow, key)
        if wait is not None:
            raise self._locked(wait)
        with self._uow(principal) as uow:
            users = UserRepository(uow.session)
            user = users.get(principal.user_id)
            if user is None or not user.is_active:
                raise AccountDisabledError()
            if not self._hasher.verify(user.password_hash, current_password or ""):
                AuditRepository(uow.session).record(
                    "password.change_failed", user_id=user.id, details={"reason": "password"}
                )
                uow.commit()
                with self._uow(scope="auth") as auth_uow:
                    seconds = self._count_failure(auth_uow, key, user.id, None)
                    auth_uow.commit()
                if seconds is not None:
                    raise self._locked(seconds)
                raise InvalidCredentialsError("The current password is not correct.")
            user.password_hash = self._hasher.hash(new_password)
            count = RefreshTokenRepository(uow.session).revoke_user(
                user.id, now, "password_changed", keep_family=keep_session_id
            )
            AuditRepository(uow.session).record(
                "password.changed", user_id=user.id, details={"sessions_ended": count}
            )
            uow.commit()
        return count

    # -- users ---------------------------------------------------------------------------------

    def get_principal(self, user_id: uuid.UUID) -> Principal | None:
        """The current state of a user (None if missing or deactivated)."""
        with self._uow.for_user_id(user_id) as uow:
            user = UserRepository(uow.session).get(user_id)
            if user is None or not user.is_active:
                return None
            return principal_of(user)

    def purge_throttles(self, idle_days: int = 2) -> int:
        """Forget sign-in throttling state nobody needs any more: rate-limit windows older than
        a day and per-account failure counters idle for ``idle_days`` (longer than any
        lockout). Returns how many rows went."""
        removed = self._limiter.purge(older_than_seconds=86400)
        before = self._clock.now() - timedelta(days=idle_days)
        with self._uow(scope="auth") as uow:
            removed += LockoutRepository(uow.session).purge_idle(before)
            uow.commit()
        return removed

    def principal_for_email(self, email: str) -> Principal:
        """The account with this email, for operator commands run on the server (the CLI);
        :class:`NotFoundError` when there is none."""
        with self._uow(scope="auth") as uow:
            user = uow.users.by_email(normalise_email(email))
            if user is None:
                raise NotFoundError(f"No account with the email {email}.")
            return principal_of(user)

    def operator(self) -> Principal | None:
        """The principal the command line acts as: the oldest active admin (None before the
        first account exists)."""
        with self._uow(scope="auth") as uow:
            admin = UserRepository(uow.session).first_active_admin()
            return principal_of(admin) if admin else None

    def list_users(self, actor: Principal) -> list[Principal]:
        """Every user (admins only)."""
        if not actor.is_admin:
            raise PermissionDeniedError()
        with self._uow(actor) as uow:
            return [principal_of(u) for u in UserRepository(uow.session).list()]
