"""Password sign-in: the credential check, throttling per client IP and lockout per account.

Unknown email and wrong password raise the same :class:`InvalidCredentialsError` after the same
work (a dummy hash is verified for unknown emails). Repeated failures lock the login name,
whether or not it exists. Until the account is known the transaction acts as nobody: the email
is looked up, and the failure counter kept, through narrow definer functions (migration 0013);
then it acts as that user. A success opens a session through :class:`SessionService`.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import NoReturn

from jarvis.clock import Clock
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import (
    AccountDisabledError,
    InvalidCredentialsError,
    RateLimitError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.security.passwords import MAX_LENGTH, PasswordHasher
from jarvis.services.auth.lockouts import AccountLockouts
from jarvis.services.auth.policy import (
    LoginPolicy,
    check_login_name,
    clean_ip,
    describe_wait,
    locked_error,
    lockout_key,
)
from jarvis.services.auth.sessions import SessionService
from jarvis.services.auth.views import IssuedSession, principal_of
from jarvis.services.rate_limits import RateLimiter
from jarvis.validation import is_valid_unicode, storable_text


class SignInService:
    """Check a password (throttled) and open a session: :meth:`login` is the one call."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        sessions: SessionService,
        *,
        limiter: RateLimiter | None = None,
        policy: LoginPolicy | None = None,
        lockouts: AccountLockouts | None = None,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._sessions = sessions
        self._limiter = limiter or RateLimiter(uow, clock)
        self.policy = policy or LoginPolicy()
        self._lockouts = lockouts or AccountLockouts(clock, self.policy)

    def login(
        self, email: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> IssuedSession:
        """Sign in: :meth:`check_credentials`, then a new session for this browser or device."""
        principal = self._check(email, password, ip=ip, user_agent=user_agent, record=False)
        # The one audit row of this sign-in, naming its session.
        return self._sessions.open(
            principal, ip=ip, user_agent=user_agent, audit_as="login.success"
        )

    def check_credentials(
        self, email: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> Principal:
        """The account whose password this is, with throttling per client IP and per account
        (no session is opened; audited as ``login.success``).

        Raises :class:`InvalidCredentialsError` (unknown email or wrong password, alike),
        :class:`AccountLockedError` (says for how long), :class:`RateLimitError` (too many
        attempts from ``ip``) or :class:`AccountDisabledError`.
        """
        return self._check(email, password, ip=ip, user_agent=user_agent, record=True)

    def _check(
        self,
        email: str,
        password: str,
        *,
        ip: str | None,
        user_agent: str | None,
        record: bool,
    ) -> Principal:
        ip = clean_ip(ip)
        password = password or ""
        key = lockout_key(check_login_name(email))
        now = self._clock.now()
        if ip is not None:
            self._throttle_ip(ip)
        if len(password) > MAX_LENGTH:
            # Refused before any hashing: this says nothing about the account.
            raise ValidationError(
                f"Password must be at most {MAX_LENGTH} characters.", field="password"
            )
        if not is_valid_unicode(password):
            raise ValidationError(
                "The password contains characters that are not valid text.", field="password"
            )
        with self._uow() as uow:
            wait = self._lockouts.remaining(uow, key)
            if wait is not None:
                uow.audit.record("login.failure", user_id=None, details={"reason": "locked"}, ip=ip)
                uow.commit()
                raise locked_error(wait)
            user_id = uow.users.id_for_email(key)
            user = None
            if user_id is not None:
                uow.act_as(user_id)
                user = uow.users.get(user_id)
            if user is None:
                self._hasher.spend_dummy(password)
                uow.audit.record(
                    "login.failure", user_id=None, details={"reason": "unknown"}, ip=ip
                )
                self._failed(uow, key, None, ip)
            if not self._hasher.verify(user.password_hash, password):
                uow.audit.record(
                    "login.failure", user_id=user.id, details={"reason": "password"}, ip=ip
                )
                self._failed(uow, key, user.id, ip)
            if not user.is_active:
                uow.audit.record(
                    "login.failure", user_id=user.id, details={"reason": "inactive"}, ip=ip
                )
                uow.commit()
                raise AccountDisabledError()
            if self._hasher.needs_rehash(user.password_hash):
                # The parameters changed since this hash was made: upgrade it (password known).
                with contextlib.suppress(ValidationError):  # a legacy password outside 8-1024
                    user.password_hash = self._hasher.hash(password)
            self._lockouts.clear(uow, key)
            uow.users.touch_login(user, now)
            if record:
                uow.audit.record(
                    "login.success",
                    user_id=user.id,
                    ip=ip,
                    details={"user_agent": storable_text(user_agent, 200)},
                )
            principal = principal_of(user)
            uow.commit()
        return principal

    def purge_throttles(self, idle_days: int = 2) -> int:
        """Forget sign-in throttling state nobody needs any more: rate-limit windows older than
        a day and per-account failure counters idle for ``idle_days`` (longer than any
        lockout). Returns how many rows went."""
        removed = self._limiter.purge(older_than_seconds=86400)
        before = self._clock.now() - timedelta(days=idle_days)
        with self._uow() as uow:
            removed += self._lockouts.purge_idle(uow, before)
            uow.commit()
        return removed

    def purge_expired_state(self) -> int:
        """The daily purge (a periodic job, and ``jarvis db purge``): the throttling state of
        :meth:`purge_throttles`, refresh tokens past their expiry, and browser credentials
        that are expired, revoked, never redeemed, or whose session ended. Live sessions are
        untouched. Returns how many rows went."""
        removed = self.purge_throttles()
        with self._uow() as uow:
            removed += uow.tokens.purge_ended(self._clock.now())
            uow.commit()
        return removed

    # -- helpers ----------------------------------------------------------------------------

    def _throttle_ip(self, ip: str) -> None:
        decision = self._limiter.hit(
            f"login:ip:{ip}", self.policy.ip_limit, self.policy.ip_window_seconds
        )
        if decision.allowed:
            return
        with self._uow() as uow:
            uow.audit.record("login.throttled", user_id=None, ip=ip, details={"scope": "ip"})
            uow.commit()
        raise RateLimitError(
            "Too many sign-in attempts from your network. "
            f"Try again in {describe_wait(decision.retry_after)}.",
            retry_after=decision.retry_after,
        )

    def _failed(
        self, uow: UnitOfWork, key: str, user_id: uuid.UUID | None, ip: str | None
    ) -> NoReturn:
        """Count a failure for ``key``; lock it when the threshold is reached. Always raises."""
        seconds = self._lockouts.count_failure(uow, key, user_id, ip)
        uow.commit()
        if seconds is not None:
            raise locked_error(seconds)
        raise InvalidCredentialsError()
