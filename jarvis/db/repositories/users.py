"""Users and instance settings."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from jarvis.db.tables import AppSetting, User

#: What an instance setting holds (stored as JSON).
SettingValue: TypeAlias = (
    str | int | float | bool | None | list["SettingValue"] | dict[str, "SettingValue"]
)


class UserRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def by_email(self, email: str) -> User | None:
        """The user with this email among those this transaction may see (yourself; an admin
        everyone). Before a user is known use :meth:`id_for_email`."""
        return self.session.scalar(
            select(User).where(func.lower(User.email) == email.strip().lower())
        )

    def id_for_email(self, email: str) -> uuid.UUID | None:
        """The id of the account with this email, whoever acts (narrow definer function:
        sign-in, registration, the CLI)."""
        value = self.session.scalar(text("select jarvis_user_id_for_email(:e)"), {"e": email})
        return uuid.UUID(str(value)) if value else None

    def has_any(self) -> bool:
        """Whether any account exists, whoever acts (definer function: first-user rule)."""
        return bool(self.session.scalar(text("select jarvis_has_users()")))

    def first_active_admin_id(self) -> uuid.UUID | None:
        """The oldest active administrator, whoever acts (the CLI's operator)."""
        value = self.session.scalar(text("select jarvis_first_active_admin()"))
        return uuid.UUID(str(value)) if value else None

    def lock_registrations(self) -> None:
        """Serialise registrations (transaction-scoped), so two "first users" cannot both
        become admin."""
        self.session.execute(text("select pg_advisory_xact_lock(7261001)"))

    def add(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def list(self) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.created_at)))

    def touch_login(self, user: User, when: datetime) -> None:
        user.last_login_at = when

    def search(self, query: str = "", *, limit: int = 500) -> builtins.list[User]:
        """Users whose email or display name contains ``query`` (case-insensitive)."""
        stmt = select(User).order_by(User.created_at).limit(limit)
        if query.strip():
            pattern = "%" + query.strip().replace("%", r"\%").replace("_", r"\_") + "%"
            stmt = stmt.where(User.email.ilike(pattern) | User.display_name.ilike(pattern))
        return list(self.session.scalars(stmt))

    def delete(self, user_ids: Sequence[uuid.UUID]) -> int:
        """Delete users and, by cascade, everything they own (what row-level security lets the
        transaction see: in practice an owner transaction, such as test clean-up)."""
        if not user_ids:
            return 0
        result = self.session.execute(delete(User).where(User.id.in_(list(user_ids))))
        return int(getattr(result, "rowcount", 0) or 0)

    def count_active_admins(self) -> int:
        """How many active administrators exist (the last one is never demoted or deactivated)."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.role == "admin", User.is_active.is_(True))
            )
            or 0
        )


class AppSettingsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str, default: SettingValue = None) -> SettingValue:
        row = self.session.get(AppSetting, key)
        if row is None:
            return default
        value: SettingValue = row.value.get("value", default)
        return value

    def set(self, key: str, value: SettingValue) -> None:
        row = self.session.get(AppSetting, key)
        if row is None:
            self.session.add(AppSetting(key=key, value={"value": value}))
        else:
            row.value = {"value": value}
            row.updated_at = func.now()
        self.session.flush()
