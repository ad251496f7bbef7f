"""User administration: list users, change roles, activate / deactivate, reset passwords,
read the audit log. Every method requires an administrator and is audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from jarvis.clock import Clock
from jarvis.db.repositories.users import UserRepository
from jarvis.db.tables import User
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from jarvis.identity import Principal
from jarvis.security.passwords import PasswordHasher, validate_password
from jarvis.services.audit_text import action_label, details_text, target_text
from jarvis.services.auth import SessionService
from jarvis.validation import clamp_int, clean_line


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as the admin page shows it (never the password hash)."""

    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEventView:
    """One audit event for the log viewer."""

    id: uuid.UUID
    created_at: datetime
    action: str
    user_id: uuid.UUID | None
    user_email: str | None
    actor_id: uuid.UUID | None
    actor_email: str | None
    target: str | None
    ip: str | None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def action_label(self) -> str:
        """The action in words ("Signed in" for ``login.success``)."""
        return action_label(self.action)

    @property
    def target_text(self) -> str:
        """The target in words ("session 9f1c2a3b")."""
        return target_text(self.target)

    @property
    def details_text(self) -> str:
        """The details as ``key: value`` text ("provider: openai · works: no")."""
        return details_text(self.details)


def _view(user: User) -> UserView:
    return UserView(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        is_active=user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


class AdminService:
    """Administrator operations on accounts; sessions are ended through
    :class:`~jarvis.services.auth.SessionService`."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        sessions: SessionService,
        hasher: PasswordHasher,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock

    @staticmethod
    def _require_admin(actor: Principal) -> None:
        if not actor.is_admin:
            raise PermissionDeniedError("This is for administrators.")

    def list_users(self, actor: Principal, query: str = "") -> list[UserView]:
        """Every user (filtered by email / name when ``query`` is given), oldest first."""
        self._require_admin(actor)
        query = clean_line(query, field="query", label="search", max_chars=320, required=False)
        with self._uow(actor) as uow:
            return [_view(u) for u in uow.users.search(query)]

    def _target(self, users: UserRepository, user_id: uuid.UUID) -> User:
        user = users.get(user_id)
        if user is None:
            raise NotFoundError("That user does not exist.")
        return user

    def set_role(self, actor: Principal, user_id: uuid.UUID, role: str) -> UserView:
        """Make a user an admin or a regular user. The last active admin stays an admin."""
        self._require_admin(actor)
        if role not in ("admin", "user"):
            raise ValidationError("Role must be admin or user.", field="role")
        with self._uow(actor) as uow:
            users = uow.users
            user = self._target(users, user_id)
            if user.role == role:
                return _view(user)
            if user.role == "admin" and user.is_active and users.count_active_admins() <= 1:
                raise ConflictError(
                    "This is the last administrator; make someone else admin first."
                )
            old = user.role
            user.role = role
            uow.audit.record(
                "user.role_changed",
                user_id=user.id,
                actor_id=actor.user_id,
                target=f"user:{user.id}",
                details={"from": old, "to": role},
            )
            view = _view(user)
            uow.commit()
        return view

    def set_active(self, actor: Principal, user_id: uuid.UUID, active: bool) -> UserView:
        """Activate or deactivate an account; deactivation ends all its sessions at once."""
        self._require_admin(actor)
        with self._uow(actor) as uow:
            users = uow.users
            user = self._target(users, user_id)
            if user.is_active == active:
                return _view(user)
            if not active and user.role == "admin" and users.count_active_admins() <= 1:
                raise ConflictError("This is the last administrator; it cannot be deactivated.")
            user.is_active = active
            uow.audit.record(
                "user.activated" if active else "user.deactivated",
                user_id=user.id,
                actor_id=actor.user_id,
                target=f"user:{user.id}",
            )
            view = _view(user)
            uow.commit()
        if not active:
            # Also checked on every request (is_active), so the user is out even before this.
            self._sessions.revoke_all_for(actor, user_id, "deactivated")
        return view

    def reset_password(self, actor: Principal, user_id: uuid.UUID, new_password: str) -> None:
        """Set a new password for a user (tell them; they can change it). Ends their sessions."""
        self._require_admin(actor)
        validate_password(new_password)
        password_hash = self._hasher.hash(new_password)
        with self._uow(actor) as uow:
            user = self._target(uow.users, user_id)
            user.password_hash = password_hash
            uow.audit.record(
                "user.password_reset",
                user_id=user.id,
                actor_id=actor.user_id,
                target=f"user:{user.id}",
            )
            uow.commit()
        self._sessions.revoke_all_for(actor, user_id, "password_reset")

    def audit_log(
        self,
        actor: Principal,
        *,
        action: str | None = None,
        user_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[AuditEventView]:
        """Audit events, newest first, filtered by action, user (as subject or actor) and time;
        ``offset`` skips that many (the next page)."""
        self._require_admin(actor)
        limit = max(1, min(limit, 2000))
        offset = clamp_int(offset, 0, 10**9, field="offset")
        action = clean_line(action, field="action", max_chars=64, required=False)
        with self._uow(actor) as uow:
            rows = uow.audit.search(
                action=action or None,
                user_id=user_id,
                since=since,
                until=until,
                limit=limit,
                offset=offset,
            )
            return [
                AuditEventView(
                    id=e.id,
                    created_at=e.created_at,
                    action=e.action,
                    user_id=e.user_id,
                    user_email=user_email,
                    actor_id=e.actor_id,
                    actor_email=actor_email,
                    target=e.target,
                    ip=str(e.ip) if e.ip else None,
                    details=dict(e.details or {}),
                )
                for e, user_email, actor_email in rows
            ]

    def audit_actions(self, actor: Principal) -> list[str]:
        """The action names present in the log (for the filter)."""
        self._require_admin(actor)
        with self._uow(actor) as uow:
            return uow.audit.actions()
