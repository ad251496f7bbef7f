"""Accounts: registration (the first user becomes admin), the sign-up switch, password
changes, and looking principals up (by id, by email for the CLI, the CLI's operator).

Before a user is known (registration, the CLI's lookups) the transaction acts as nobody and
asks narrow definer functions (migration 0013): does any account exist, whose is this email,
who is the oldest admin. A self-service registration then acts as the new account to insert
it; an administrator's acts as the administrator. Everything after runs as the user.
"""

from __future__ import annotations

import uuid

from jarvis.clock import Clock
from jarvis.db.tables import User
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import (
    AccountDisabledError,
    ConflictError,
    InvalidCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher, validate_password
from jarvis.services.auth.lockouts import AccountLockouts
from jarvis.services.auth.policy import (
    LoginPolicy,
    clean_ip,
    describe_wait,
    locked_error,
    lockout_key,
    normalise_email,
)
from jarvis.services.auth.views import principal_of
from jarvis.services.rate_limits import RateLimiter
from jarvis.validation import clean_line

SIGNUP_OPEN_KEY = "signup_open"


class AccountService:
    """Create accounts, open or close sign-up, change your password, look users up."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
        policy: LoginPolicy | None = None,
        lockouts: AccountLockouts | None = None,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._limiter = limiter or RateLimiter(uow, clock)
        self._policy = policy or LoginPolicy()
        self._lockouts = lockouts or AccountLockouts(clock, self._policy)

    # -- registration ---------------------------------------------------------------------------

    def has_users(self) -> bool:
        """True once any account exists (the first visit offers to create the admin)."""
        with self._uow() as uow:
            return uow.users.has_any()

    def signup_open(self) -> bool:
        """Whether people may register themselves (always true before the first user)."""
        with self._uow() as uow:
            if not uow.users.has_any():
                return True
            return bool(uow.app_settings.get(SIGNUP_OPEN_KEY, False))

    def set_signup_open(self, actor: Principal, is_open: bool) -> None:
        """Open or close self-service sign-up (administrators only)."""
        if not actor.is_admin:
            raise PermissionDeniedError()
        with self._uow(actor) as uow:
            uow.app_settings.set(SIGNUP_OPEN_KEY, bool(is_open))
            uow.audit.record(
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
        ip = clean_ip(ip)
        admin_actor = bool(actor and actor.is_admin)
        if ip is not None and not admin_actor:
            self._throttle_signups(ip)
        display_name = (
            clean_line(
                display_name,
                field="display_name",
                label="display name",
                max_chars=200,
                required=False,
            )
            or email.split("@")[0]
        )
        password_hash = self._hasher.hash(password)
        new_id = uuid.uuid4()
        # An administrator creates the row as themself (the database checks they are one);
        # anyone else as the new account (a trigger refuses an admin row unless it is the first).
        acting = self._uow(actor) if admin_actor else self._uow.for_user_id(new_id)
        with acting as uow:
            uow.users.lock_registrations()
            first = not uow.users.has_any()
            signup = bool(uow.app_settings.get(SIGNUP_OPEN_KEY, False))
            if not first and not admin_actor and not signup:
                raise PermissionDeniedError(
                    "Sign-up is closed. Ask an administrator for an account."
                )
            if uow.users.id_for_email(email) is not None:
                raise ConflictError("An account with this email already exists.")
            if role not in (None, "admin", "user"):
                raise ValidationError("Role must be admin or user.", field="role")
            if role == "admin" and not first and not admin_actor:
                raise PermissionDeniedError()
            user = User(
                id=new_id,
                email=email,
                display_name=display_name,
                password_hash=password_hash,
                role="admin" if first else (role or "user"),
            )
            uow.users.add(user)
            uow.audit.record(
                "user.registered",
                user_id=user.id,
                actor_id=actor.user_id if actor else user.id,
                details={"role": user.role},
            )
            principal = principal_of(user)
            uow.commit()
        return principal

    def _throttle_signups(self, ip: str) -> None:
        decision = self._limiter.hit(
            f"signup:ip:{ip}", self._policy.signups_per_ip, self._policy.signup_window_seconds
        )
        if not decision.allowed:
            raise RateLimitError(
                "Too many new accounts from your network. "
                f"Try again in {describe_wait(decision.retry_after)}.",
                retry_after=decision.retry_after,
            )

    # -- your password ----------------------------------------------------------------------

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
        key = lockout_key(principal.email)
        with self._uow(principal) as uow:
            wait = self._lockouts.remaining(uow, key)
        if wait is not None:
            raise locked_error(wait)
        with self._uow(principal) as uow:
            user = uow.users.get(principal.user_id)
            if user is None or not user.is_active:
                raise AccountDisabledError()
            if not self._hasher.verify(user.password_hash, current_password or ""):
                uow.audit.record(
                    "password.change_failed", user_id=user.id, details={"reason": "password"}
                )
                uow.commit()
                with self._uow(principal) as count_uow:
                    seconds = self._lockouts.count_failure(count_uow, key, user.id, None)
                    count_uow.commit()
                if seconds is not None:
                    raise locked_error(seconds)
                raise InvalidCredentialsError("The current password is not correct.")
            user.password_hash = self._hasher.hash(new_password)
            count = uow.tokens.revoke_user(
                user.id, now, "password_changed", keep_family=keep_session_id
            )
            uow.audit.record("password.changed", user_id=user.id, details={"sessions_ended": count})
            uow.commit()
        return count

    # -- looking users up -------------------------------------------------------------------

    def get_principal(self, user_id: uuid.UUID) -> Principal | None:
        """The current state of a user (None if missing or deactivated)."""
        with self._uow.for_user_id(user_id) as uow:
            user = uow.users.get(user_id)
            if user is None or not user.is_active:
                return None
            return principal_of(user)

    def principal_for_email(self, email: str) -> Principal:
        """The account with this email, for operator commands run on the server (the CLI);
        :class:`NotFoundError` when there is none."""
        with self._uow() as uow:
            user_id = uow.users.id_for_email(normalise_email(email))
            if user_id is not None:
                uow.act_as(user_id)
            user = uow.users.get(user_id) if user_id is not None else None
            if user is None:
                raise NotFoundError(f"No account with the email {email}.")
            return principal_of(user)

    def operator(self) -> Principal | None:
        """The principal the command line acts as: the oldest active admin (None before the
        first account exists)."""
        with self._uow() as uow:
            admin_id = uow.users.first_active_admin_id()
            if admin_id is None:
                return None
            uow.act_as(admin_id, "admin")
            admin = uow.users.get(admin_id)
            return principal_of(admin) if admin else None

    def list_users(self, actor: Principal) -> list[Principal]:
        """Every user, oldest first (admins only)."""
        if not actor.is_admin:
            raise PermissionDeniedError()
        with self._uow(actor) as uow:
            return [principal_of(u) for u in uow.users.list()]
