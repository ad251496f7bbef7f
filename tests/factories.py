"""Test data, made the way the application makes it: the one place tests get users and runs.

Users
* :func:`user`     a user row written through ``uow.users`` (inserted as itself).
                   No password: it cannot sign in. Fast (no hashing, no audit, no sign-up
                   rules). Lives in the transaction of the unit-of-work factory passed in:
                   ``services.uow`` (rolled back after the test) or ``committed_services.uow``
                   (committed: give it a unique name).
* :func:`account`  a user who can sign in, registered through ``AccountService.register``
                   whatever the sign-up switch says (an operator acts as the admin, like the
                   CLI). On an empty database the first account is the administrator (the
                   product's rule): ask for ``role="admin"`` first.
* ``committed_user`` (fixture in ``tests/conftest.py``): committed users, deleted after the test.

Runs
* :func:`add_run`       an ``agent_runs`` row (and its tool calls) in an open unit of work.
* :func:`finished_run`  a run closed the way the chat engine closes it: priced and added to
                        the usage rollups by ``services.run_recorder``, committed.

Repository-level factories take a unit of work (factory); service-level ones take ``Services``.
(``tests/integration/test_row_level_security.py`` seeds one row in *every* user-owned table as
the owner on purpose, and the chat tests have their own helpers in ``chat_helpers.py``.)
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, text

from jarvis.bootstrap import Services
from jarvis.db.tables import AgentRun, ToolCall, User
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.identity import Principal, Role

#: The password of every :func:`account` unless a test says otherwise.
PASSWORD = "correct horse battery"
#: Old name of :data:`PASSWORD`.
PW = PASSWORD
#: A real, active administrator of the session database (the ``settings`` fixture inserts it as
#: the owner): the actor of registrations made while sign-up is closed and of admin edits. The
#: database checks that whoever acts as an admin is one (migration 0013), so a made-up admin
#: principal would be refused.
OPERATOR = Principal(
    user_id=uuid.UUID("00000000-0000-4000-8000-00000000a001"),
    email="operator@example.com",
    role="admin",
    display_name="Operator",
)

#: A tool call of a run: (tool id, status, latency in ms or None).
ToolCallSpec = tuple[str, str, int | None]


def unique_email(prefix: str = "user") -> str:
    """An email no other test uses (for data that is committed)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


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


def user(
    uow: UnitOfWorkFactory,
    name: str = "user",
    *,
    email: str | None = None,
    role: Role = "user",
    timezone: str = "UTC",
    budget: Decimal | None = None,
    user_id: uuid.UUID | None = None,
) -> Principal:
    """A user row (no password) written through the users repository in ``uow``'s
    transaction: inserted as itself, then made admin / given a budget by :data:`OPERATOR`.
    The email is unique unless given."""
    uid = user_id or uuid.uuid4()
    email = email or f"{name}-{uid.hex[:8]}@example.com"
    with uow.for_user_id(uid) as w:
        w.users.add(
            User(id=uid, email=email, display_name=name, password_hash="x", timezone=timezone)
        )
        w.commit()
    if role != "user" or budget is not None:
        with uow(OPERATOR) as w:
            row = w.users.get(uid)
            assert row is not None
            row.role = role
            row.monthly_budget_usd = budget
            w.commit()
    return Principal(user_id=uid, email=email, role=role, display_name=name)


def insert_user(
    uow: UnitOfWorkFactory,
    email: str,
    *,
    role: Role = "user",
    budget: Decimal | None = None,
    timezone: str = "UTC",
    display_name: str | None = None,
    user_id: uuid.UUID | None = None,
) -> Principal:
    """:func:`user` by email (the display name defaults to the email's local part)."""
    name = email.split("@")[0] if display_name is None else display_name
    return user(
        uow, name, email=email, role=role, timezone=timezone, budget=budget, user_id=user_id
    )


def account(
    services: Services,
    email: str | None = None,
    password: str = PASSWORD,
    *,
    name: str = "",
    role: Role = "user",
    actor: Principal = OPERATOR,
) -> Principal:
    """A user who can sign in, registered through the accounts service by ``actor`` (an
    administrator; on an empty database the account registers itself, as on a first visit)."""
    email = email or unique_email()
    if not services.accounts.has_users():
        if role == "admin":  # the first account: the administrator
            return services.accounts.register(email, password, name)
        # The first account becomes admin whatever was asked: let a stand-in take that place.
        services.accounts.register(unique_email("first"), PASSWORD)
    return services.accounts.register(email, password, name, role=role, actor=actor)


def admin_account(
    services: Services, email: str | None = None, password: str = PASSWORD, *, name: str = ""
) -> Principal:
    """An administrator who can sign in."""
    return account(services, email, password, name=name, role="admin")


def add_run(
    w: UnitOfWork,
    who: Principal,
    *,
    provider: str = "openai",
    model: str = "gpt-4o-mini",
    status: str = "running",
    started_at: datetime,
    finished_at: datetime | None = None,
    heartbeat_at: datetime | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    tools: tuple[ToolCallSpec, ...] = (),
) -> AgentRun:
    """A run of ``who`` (and its tool calls, one second apart) in the open unit of work ``w``,
    written through ``w.runs`` / ``w.tool_calls``; not committed, not priced."""
    run = w.runs.add(
        AgentRun(
            id=uuid.uuid4(),
            user_id=who.user_id,
            provider=provider,
            model=model,
            status=status,
            started_at=started_at,
            finished_at=finished_at,
            heartbeat_at=heartbeat_at,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
    )
    for i, (tool_id, tool_status, latency) in enumerate(tools):
        w.tool_calls.add(
            ToolCall(
                id=uuid.uuid4(),
                run_id=run.id,
                user_id=who.user_id,
                tool_id=tool_id,
                arguments={},
                status=tool_status,
                latency_ms=latency,
                created_at=started_at + timedelta(seconds=i + 1),
            )
        )
    return run


def finished_run(
    services: Services,
    who: Principal,
    provider: str,
    model: str,
    started_at: datetime,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    status: str = "completed",
    tools: tuple[ToolCallSpec, ...] = (),
) -> uuid.UUID:
    """A run that started ``running``, made its tool calls and ended a minute later with
    ``status``: priced and rolled up by ``services.run_recorder`` as the chat engine does."""
    with services.uow(who) as w:
        run = add_run(w, who, provider=provider, model=model, started_at=started_at, tools=tools)
        run.status = status
        run.input_tokens = input_tokens
        run.output_tokens = output_tokens
        run.cache_read_tokens = cache_read_tokens
        run.cache_write_tokens = cache_write_tokens
        run.finished_at = started_at + timedelta(minutes=1)
        services.run_recorder.on_run_finished(w, run)
        w.commit()
        return run.id
