"""Accounts: registration (first user becomes admin), login, users.

Users live in PostgreSQL only. Lookups before a user is known run in the narrow ``auth``
row-level-security scope; everything after runs as the user.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import text

from jarvis.clock import Clock
from jarvis.db.repositories.audit import AuditRepository
from jarvis.db.repositories.users import AppSettingsRepository, UserRepository
from jarvis.db.tables import User
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import (
    AccountDisabledError,
    ConflictError,
    InvalidCredentialsError,
    PermissionDeniedError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher, validate_password

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
SIGNUP_OPEN_KEY = "signup_open"


def normalise_email(email: str) -> str:
    email = (email or "").strip()
    if not EMAIL_RE.match(email) or len(email) > 320:
        raise ValidationError("Enter a valid email address.", field="email")
    return email


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id, email=user.email, role=user.role, display_name=user.display_name  # type: ignore[arg-type]
    )


class AuthService:
    """Registration and password login."""

    def __init__(self, uow: UnitOfWorkFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow = uow
        self._hasher = hasher
        self._clock = clock

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

    def register(
        self, email: str, password: str, display_name: str = "", *, role: str | None = None,
        actor: Principal | None = None,
    ) -> Principal:
        """Create an account. The first account is an admin; later ones need open sign-up
        (or an admin ``actor``)."""
        email = normalise_email(email)
        validate_password(password)
        display_name = (display_name or "").strip()[:200] or email.split("@")[0]
        password_hash = self._hasher.hash(password)
        with self._uow(scope="auth") as uow:
            users = UserRepository(uow.session)
            uow.session.execute(
                # Serialise registrations so two "first users" cannot both become admin.
                text("select pg_advisory_xact_lock(7261001)")
            )
            first = users.count() == 0
            if not first and not (actor and actor.is_admin):
                if not AppSettingsRepository(uow.session).get(SIGNUP_OPEN_KEY, False):
                    raise PermissionDeniedError("Sign-up is closed. Ask an administrator for an account.")
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
                "user.registered", user_id=user.id, actor_id=actor.user_id if actor else user.id,
                details={"role": user.role},
            )
            principal = principal_of(user)
            uow.commit()
        return principal

    def login(self, email: str, password: str, *, ip: str | None = None) -> Principal:
        """Check a password; the same error (and similar time) for unknown email and wrong password."""
        with self._uow(scope="auth") as uow:
            users = UserRepository(uow.session)
            user = users.by_email(email or "")
            if user is None:
                self._hasher.spend_dummy(password or "")
                AuditRepository(uow.session).record(
                    "login.failure", user_id=None, details={"reason": "unknown"}, ip=ip
                )
                uow.commit()
                raise InvalidCredentialsError()
            if not self._hasher.verify(user.password_hash, password or ""):
                AuditRepository(uow.session).record(
                    "login.failure", user_id=user.id, details={"reason": "password"}, ip=ip
                )
                uow.commit()
                raise InvalidCredentialsError()
            if not user.is_active:
                raise AccountDisabledError()
            if self._hasher.needs_rehash(user.password_hash):
                user.password_hash = self._hasher.hash(password)
            users.touch_login(user, self._clock.now())
            AuditRepository(uow.session).record("login.success", user_id=user.id, ip=ip)
            principal = principal_of(user)
            uow.commit()
        return principal

    def get_principal(self, user_id: uuid.UUID) -> Principal | None:
        """The current state of a user (None if missing or deactivated)."""
        with self._uow.for_user_id(user_id) as uow:
            user = UserRepository(uow.session).get(user_id)
            if user is None or not user.is_active:
                return None
            return principal_of(user)

    def list_users(self, actor: Principal) -> list[Principal]:
        """Every user (admins only)."""
        if not actor.is_admin:
            raise PermissionDeniedError()
        with self._uow(actor) as uow:
            return [principal_of(u) for u in UserRepository(uow.session).list()]
