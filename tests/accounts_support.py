"""Helpers for tests that need accounts: create admins / users whatever else the database holds.

The session database is shared with tests that commit, so "the first user becomes admin"
cannot be relied on in a rolled-back test: an operator principal (like the CLI's) is used.
:data:`OPERATOR` is a real, active administrator of the session database (the ``settings``
fixture inserts it as the owner): the database itself checks that whoever acts as an admin is
one (migration 0013), so a made-up admin principal would be refused.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Engine, text

from jarvis.bootstrap import Services
from jarvis.db.tables import User
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.identity import Principal

PW = "correct horse battery"
OPERATOR = Principal(
    user_id=uuid.UUID("00000000-0000-4000-8000-00000000a001"),
    email="operator@example.com",
    role="admin",
    display_name="Operator",
)


def ensure_operator(owner_engine: Engine) -> None:
    """Insert :data:`OPERATOR` (as the owner, committed) unless it exists."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "insert into users (id, email, display_name, password_hash, role)"
                " values (:id, :email, :name, 'x', 'admin') on conflict do nothing"
            ),
            {"id": OPERATOR.user_id, "email": OPERATOR.email, "name": OPERATOR.display_name},
        )


def insert_user(
    uow: UnitOfWorkFactory,
    email: str,
    *,
    role: str = "user",
    budget: Decimal | None = None,
    timezone: str = "UTC",
    display_name: str | None = None,
    user_id: uuid.UUID | None = None,
) -> Principal:
    """A user row written straight into the test's transaction (no password, no sign-up
    rules): inserted as itself, then made admin / given a budget by :data:`OPERATOR`."""
    uid = user_id or uuid.uuid4()
    name = email.split("@")[0] if display_name is None else display_name
    with uow.for_user_id(uid) as w:
        w.users.add(
            User(id=uid, email=email, display_name=name, password_hash="x", timezone=timezone)
        )
        w.commit()
    if role != "user" or budget is not None:
        with uow(OPERATOR) as w:
            user = w.users.get(uid)
            assert user is not None
            user.role = role
            user.monthly_budget_usd = budget
            w.commit()
    return Principal(user_id=uid, email=email, role=role, display_name=name)  # type: ignore[arg-type]


def make_user(
    services: Services, email: str, password: str = PW, *, role: str = "user"
) -> Principal:
    if not services.accounts.has_users():
        # The very first account becomes admin whatever was asked: use it up.
        services.accounts.register(f"first-{uuid.uuid4().hex[:8]}@example.com", PW)
    return services.accounts.register(
        email, password, email.split("@")[0], role=role, actor=OPERATOR
    )


def make_admin(services: Services, email: str, password: str = PW) -> Principal:
    return make_user(services, email, password, role="admin")
