"""Row-level security, seen from the app's own role: A never sees or writes B's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from jarvis.config import Settings
from jarvis.db.tables import (
    USER_OWNED_TABLES,
    AgentRun,
    ApiKey,
    AuditEvent,
    BrowserCredential,
    Conversation,
    Job,
    KgEntity,
    KgRelation,
    Memory,
    Message,
    RefreshToken,
    RunEvent,
    ToolCall,
    ToolUsageDaily,
    UsageDaily,
    User,
    UserSecret,
    UserToolPermission,
)
from jarvis.db.uow import UnitOfWorkFactory
from tests.factories import OPERATOR

VEC = [0.0] * 383 + [1.0]


def seed_user(session: Session, tag: str) -> uuid.UUID:
    """One row in every user-owned table for a new user (written by the owner)."""
    uid = uuid.uuid4()
    session.add(
        User(
            id=uid,
            email=f"rls-{tag}-{uid.hex[:8]}@example.com",
            password_hash="x",
            display_name=tag,
        )
    )
    session.flush()
    conv = Conversation(id=uuid.uuid4(), user_id=uid, title=f"{tag} chat")
    session.add(conv)
    session.flush()
    run = AgentRun(
        id=uuid.uuid4(), user_id=uid, conversation_id=conv.id, provider="offline", model="offline"
    )
    session.add(run)
    session.flush()
    e1 = KgEntity(id=uuid.uuid4(), user_id=uid, name=f"{tag}-a")
    e2 = KgEntity(id=uuid.uuid4(), user_id=uid, name=f"{tag}-b")
    session.add_all([e1, e2])
    session.flush()
    session.add_all(
        [
            Message(
                user_id=uid,
                run_id=run.id,
                conversation_id=conv.id,
                role="user",
                content=f"{tag} says hi",
            ),
            ToolCall(user_id=uid, run_id=run.id, tool_id="calculator", status="ok"),
            Memory(
                user_id=uid, content=f"{tag} memory", embedding=VEC, embedding_model="lexical-v1"
            ),
            KgRelation(user_id=uid, source_id=e1.id, target_id=e2.id, type="knows"),
            UserSecret(
                user_id=uid,
                provider="openai",
                name="default",
                ciphertext=b"c",
                nonce=b"n" * 12,
                key_version=1,
                wrapped_dek=b"w",
                last4="abcd",
            ),
            UserToolPermission(user_id=uid, tool_id="calculator", granted=False),
            RefreshToken(
                user_id=uid,
                family_id=uuid.uuid4(),
                token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
                expires_at=datetime(2099, 1, 1, tzinfo=UTC),
            ),
            AuditEvent(id=uuid.uuid4(), user_id=uid, action="test.seed"),
            UsageDaily(
                user_id=uid, day=date(2026, 1, 1), provider="offline", model="offline", runs=1
            ),
            ToolUsageDaily(user_id=uid, day=date(2026, 1, 1), tool_id="calculator", calls=1),
            RunEvent(run_id=run.id, seq=1, user_id=uid, type="run_started", payload={"type": "x"}),
            ApiKey(user_id=uid, name="k", key_hash=uuid.uuid4().hex * 2, prefix="jrv_test"),
            BrowserCredential(
                user_id=uid,
                session_id=uuid.uuid4(),
                role="user",
                token_hash=uuid.uuid4().hex * 2,
                expires_at=datetime(2099, 1, 1, tzinfo=UTC),
            ),
            Job(user_id=uid, kind="graph_import", params={"format": "csv"}, payload=b"name\nx\n"),
        ]
    )
    session.flush()
    return uid


@pytest.fixture(scope="module")
def two_users(owner_engine: Engine) -> Iterator[tuple[uuid.UUID, uuid.UUID]]:
    with Session(owner_engine) as session:
        a = seed_user(session, "alice")
        b = seed_user(session, "bob")
        session.commit()
    yield a, b
    with Session(owner_engine) as session:
        session.execute(text("delete from users where id in (:a, :b)"), {"a": a, "b": b})
        session.commit()


def test_the_seed_covers_every_user_owned_table(owner_engine: Engine, two_users) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_users
    with owner_engine.connect() as conn:
        for table in USER_OWNED_TABLES:
            n = conn.scalar(text(f"select count(*) from {table} where user_id = :u"), {"u": a})
            assert n and n > 0, f"{table}: add it to seed_user() so RLS is tested on it"


@pytest.mark.parametrize("table", USER_OWNED_TABLES)
def test_user_sees_only_own_rows(app_engine: Engine, two_users, table: str) -> None:  # type: ignore[no-untyped-def]
    a, b = two_users
    uow = UnitOfWorkFactory(app_engine).for_user_id(a)
    with uow:
        owners = set(uow.session.scalars(text(f"select user_id from {table}")))
        by_id = uow.session.scalar(
            text(f"select count(*) from {table} where user_id = :b"), {"b": b}
        )
    assert owners == {a}
    assert by_id == 0


@pytest.mark.parametrize("table", USER_OWNED_TABLES + ("users",))
def test_no_user_set_means_no_rows(app_engine: Engine, two_users, table: str) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWorkFactory(app_engine)() as uow:
        assert uow.session.scalar(text(f"select count(*) from {table}")) == 0


def test_user_cannot_insert_rows_for_someone_else(app_engine: Engine, two_users) -> None:  # type: ignore[no-untyped-def]
    a, b = two_users
    for row in (
        Conversation(id=uuid.uuid4(), user_id=b, title="sneaky"),
        Memory(
            id=uuid.uuid4(), user_id=b, content="x", embedding=VEC, embedding_model="lexical-v1"
        ),
        UserToolPermission(user_id=b, tool_id="web_search", granted=True),
    ):
        with UnitOfWorkFactory(app_engine).for_user_id(a) as uow:
            uow.session.add(row)
            with pytest.raises(ProgrammingError, match="row-level security"):
                uow.session.flush()


def test_user_cannot_update_or_delete_someone_elses_rows(app_engine: Engine, two_users) -> None:  # type: ignore[no-untyped-def]
    a, b = two_users
    with UnitOfWorkFactory(app_engine).for_user_id(a) as uow:
        updated = uow.session.execute(
            text("update conversations set title = 'pwned' where user_id = :b"), {"b": b}
        )
        deleted = uow.session.execute(text("delete from memories where user_id = :b"), {"b": b})
        assert updated.rowcount == 0 and deleted.rowcount == 0
        uow.commit()


def test_admin_reads_runs_across_users_but_never_secrets(app_engine: Engine, two_users) -> None:  # type: ignore[no-untyped-def]
    a, b = two_users
    with UnitOfWorkFactory(app_engine).for_user_id(OPERATOR.user_id, role="admin") as uow:
        run_owners = set(uow.session.scalars(select(AgentRun.user_id)))
        secret_owners = set(uow.session.scalars(select(UserSecret.user_id)))
        memory_owners = set(uow.session.scalars(select(Memory.user_id)))
    assert {a, b} <= run_owners
    assert secret_owners <= {OPERATOR.user_id}
    assert memory_owners <= {OPERATOR.user_id}


def test_audit_events_are_append_only(app_engine: Engine, two_users) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_users
    with UnitOfWorkFactory(app_engine).for_user_id(a) as uow:
        assert uow.session.execute(text("update audit_events set action = 'x'")).rowcount == 0
        assert uow.session.execute(text("delete from audit_events")).rowcount == 0


def test_next_transaction_on_a_pooled_connection_forgets_the_user(
    settings: Settings, two_users
) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_users
    engine = create_engine(settings.app_url(), pool_size=1, max_overflow=0)
    try:
        factory = UnitOfWorkFactory(engine)
        with factory.for_user_id(a) as uow:
            assert uow.session.scalar(select(func.count()).select_from(Conversation)) == 1
            uow.commit()
        with factory() as uow:
            pid_after = uow.session.scalar(text("select pg_backend_pid()"))
            assert uow.session.scalar(select(func.count()).select_from(Conversation)) == 0
            assert uow.session.scalar(text("select current_setting('app.user_id', true)")) in (
                "",
                None,
            )
        with factory.for_user_id(a) as uow:
            assert (
                uow.session.scalar(text("select pg_backend_pid()")) == pid_after
            )  # same connection
    finally:
        engine.dispose()


def test_instance_settings_are_readable_but_only_admins_write(
    app_engine: Engine, two_users
) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_users
    with (
        UnitOfWorkFactory(app_engine).for_user_id(a) as uow,
        pytest.raises(ProgrammingError, match="row-level security"),
    ):
        uow.session.execute(
            text(
                "insert into model_prices (provider, model, input_per_mtok, output_per_mtok, effective_from)"
                " values ('x', 'y', 1, 1, :d)"
            ),
            {"d": date(2026, 1, 1)},
        )


def test_a_user_cannot_promote_reactivate_or_rebudget_themselves(
    app_engine: Engine, two_users
) -> None:  # type: ignore[no-untyped-def]
    a, _ = two_users
    for change in ("role = 'admin'", "is_active = false", "monthly_budget_usd = 1000000"):
        with (
            UnitOfWorkFactory(app_engine).for_user_id(a) as uow,
            pytest.raises(ProgrammingError, match="only an administrator"),
        ):
            uow.session.execute(text(f"update users set {change} where id = :a"), {"a": a})
    with UnitOfWorkFactory(app_engine).for_user_id(a) as uow:  # ordinary own columns still work
        uow.session.execute(
            text("update users set display_name = 'Alice B' where id = :a"), {"a": a}
        )
    with UnitOfWorkFactory(app_engine)() as uow:  # the old sign-in scope opens nothing now
        uow.session.execute(text("select set_config('app.scope', 'auth', true)"))
        changed = uow.session.execute(
            text("update users set role = 'admin' where id = :a"), {"a": a}
        )
        assert changed.rowcount == 0  # type: ignore[attr-defined]
    with UnitOfWorkFactory(app_engine).for_user_id(OPERATOR.user_id, role="admin") as uow:
        # an admin may
        uow.session.execute(text("update users set monthly_budget_usd = 5 where id = :a"), {"a": a})
