"""No session setting the app role can change widens what it sees (migration 0013).

Seen from the app role itself, as an SQL injection would see it: ``app.scope = 'auth'`` opens
nothing any more, claiming ``app.user_role = 'admin'`` gives nothing unless the acting user is
an active admin in the database, a users row cannot be inserted as an admin, the sign-in
throttling tables cannot be read at all, and the cross-user lookups sign-in needs are narrow
definer functions. Sign-in also works when the owner is not a superuser.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from jarvis.bootstrap import build_services
from jarvis.config import Settings
from jarvis.db.uow import UnitOfWork, UnitOfWorkFactory
from jarvis.errors import AccountLockedError, InvalidCredentialsError, TokenError
from jarvis.security.passwords import PasswordHasher
from jarvis.security.tokens import hash_refresh_token, new_refresh_token
from jarvis.services.auth import LoginPolicy
from tests.factories import OPERATOR, PW
from tests.integration.weak_owner import weak_owner_database  # noqa: F401 - fixture

FAR = datetime(2099, 1, 1, tzinfo=UTC)


def _seed(session: Session, tag: str, *, role: str = "user", active: bool = True) -> uuid.UUID:
    uid = uuid.uuid4()
    session.execute(
        text(
            "insert into users (id, email, password_hash, role, is_active)"
            " values (:u, :e, 'x', :r, :a)"
        ),
        {"u": uid, "e": f"widen-{tag}-{uid.hex[:8]}@example.com", "r": role, "a": active},
    )
    session.execute(
        text(
            "insert into refresh_tokens (user_id, family_id, token_hash, expires_at)"
            " values (:u, :f, :h, :x)"
        ),
        {"u": uid, "f": uuid.uuid4(), "h": hash_refresh_token(new_refresh_token()), "x": FAR},
    )
    session.execute(
        text("insert into agent_runs (user_id, provider, model) values (:u, 'offline', 'offline')"),
        {"u": uid},
    )
    session.execute(
        text("insert into audit_events (user_id, action) values (:u, 'test.seed')"), {"u": uid}
    )
    session.execute(
        text("insert into rate_limit_buckets (key, window_start, count) values (:k, now(), 3)"),
        {"k": f"login:ip:{tag}-{uid.hex[:6]}"},
    )
    session.execute(
        text("insert into account_lockouts (key, failures) values (:k, 2)"),
        {"k": f"widen-{tag}-{uid.hex[:8]}@example.com"},
    )
    return uid


@pytest.fixture(scope="module")
def people(owner_engine: Engine) -> Iterator[dict[str, uuid.UUID]]:
    """Two plain users, an admin who was deactivated (all committed by the owner)."""
    with Session(owner_engine) as session:
        ids = {
            "a": _seed(session, "a"),
            "b": _seed(session, "b"),
            "former_admin": _seed(session, "former", role="admin", active=False),
        }
        session.commit()
    yield ids
    with Session(owner_engine) as session:
        session.execute(text("delete from users where id = any(:ids)"), {"ids": list(ids.values())})
        session.execute(text("delete from rate_limit_buckets where key like 'login:ip:%-%'"))
        session.execute(text("delete from account_lockouts where key like 'widen-%'"))
        session.commit()


def _as(app_engine: Engine, user: uuid.UUID | None = None, role: str = "user") -> UnitOfWork:
    factory = UnitOfWorkFactory(app_engine)
    return factory.for_user_id(user, role) if user else factory()


def _set(uow: UnitOfWork, name: str, value: str) -> None:
    uow.session.execute(text("select set_config(:n, :v, true)"), {"n": name, "v": value})


def _ids(uow: UnitOfWork, table: str, column: str = "user_id") -> set[uuid.UUID]:
    return set(uow.session.scalars(text(f"select {column} from {table}")))


def test_setting_the_old_auth_scope_opens_nothing(app_engine: Engine, people) -> None:  # type: ignore[no-untyped-def]
    with _as(app_engine) as uow:
        _set(uow, "app.scope", "auth")
        assert _ids(uow, "users", "id") == set()
        assert _ids(uow, "refresh_tokens") == set()
        assert _ids(uow, "audit_events") == set()
    with _as(app_engine, people["a"]) as uow:
        _set(uow, "app.scope", "auth")
        assert _ids(uow, "users", "id") == {people["a"]}
        assert _ids(uow, "refresh_tokens") == {people["a"]}


@pytest.mark.parametrize("who", ["a", "former_admin"])
def test_claiming_to_be_an_admin_opens_nothing(app_engine: Engine, people, who: str) -> None:  # type: ignore[no-untyped-def]
    me = people[who]
    with _as(app_engine, me, role="admin") as uow:
        _set(uow, "app.user_role", "admin")  # and once more by hand, for good measure
        assert uow.session.scalar(text("select jarvis_is_admin()")) is False
        assert _ids(uow, "users", "id") == {me}
        assert _ids(uow, "agent_runs") == {me}
        assert _ids(uow, "tool_calls") <= {me}
        assert _ids(uow, "audit_events") <= {me}
        changed = uow.session.execute(
            text("update users set role = 'admin', is_active = true where id = :b"),
            {"b": people["b"]},
        )
        assert changed.rowcount == 0  # type: ignore[attr-defined]
    for statement in (
        "insert into model_prices (provider, model, input_per_mtok, output_per_mtok,"
        " effective_from) values ('openai', 'x', 1, 1, '2026-01-01')",
        "insert into app_settings (key, value) values ('signup_open', '{\"value\": true}')",
    ):
        with (
            _as(app_engine, me, role="admin") as uow,
            pytest.raises(ProgrammingError, match="row-level security"),
        ):
            uow.session.execute(text(statement))


def test_a_real_admin_still_reads_across_users(app_engine: Engine, people) -> None:  # type: ignore[no-untyped-def]
    with _as(app_engine, OPERATOR.user_id, role="admin") as uow:
        assert uow.session.scalar(text("select jarvis_is_admin()")) is True
        assert {people["a"], people["b"]} <= _ids(uow, "users", "id")
        assert {people["a"], people["b"]} <= _ids(uow, "agent_runs")
        assert {people["a"], people["b"]} <= _ids(uow, "audit_events")
        assert _ids(uow, "refresh_tokens") <= {OPERATOR.user_id}  # never others' tokens
    with _as(app_engine, OPERATOR.user_id, role="user") as uow:  # an admin acting as a user
        assert uow.session.scalar(text("select jarvis_is_admin()")) is False


@pytest.mark.parametrize("table", ["rate_limit_buckets", "account_lockouts"])
@pytest.mark.parametrize("scope", ["", "auth"])
def test_the_app_role_cannot_read_sign_in_throttling(
    app_engine: Engine,
    people,  # type: ignore[no-untyped-def]
    table: str,
    scope: str,
) -> None:
    with _as(app_engine, OPERATOR.user_id, role="admin") as uow:
        _set(uow, "app.scope", scope)
        with pytest.raises(ProgrammingError, match="permission denied"):
            uow.session.execute(text(f"select * from {table}"))


def test_throttling_state_is_reached_one_key_at_a_time(app_engine: Engine, people) -> None:  # type: ignore[no-untyped-def]
    with _as(app_engine) as uow:
        known = uow.lockouts.get(f"widen-a-{people['a'].hex[:8]}@example.com")
        assert known is not None and known.failures == 2
        assert uow.lockouts.get("nobody@example.com") is None


def test_nobody_mints_an_admin_by_inserting_a_users_row(app_engine: Engine, people) -> None:  # type: ignore[no-untyped-def]
    for column, value in (
        ("role", "'admin'"),
        ("monthly_budget_usd", "1000"),
        ("is_active", "false"),
    ):
        new_id = uuid.uuid4()
        with (
            _as(app_engine, new_id, role="admin") as uow,
            pytest.raises(ProgrammingError, match="only an administrator"),
        ):
            uow.session.execute(
                text(
                    f"insert into users (id, email, password_hash, {column})"
                    f" values (:u, :e, 'x', {value})"
                ),
                {"u": new_id, "e": f"mint-{new_id.hex[:8]}@example.com"},
            )
    new_id = uuid.uuid4()
    with _as(app_engine, new_id) as uow:  # a plain account is what self-registration makes
        uow.session.execute(
            text("insert into users (id, email, password_hash) values (:u, :e, 'x')"),
            {"u": new_id, "e": f"plain-{new_id.hex[:8]}@example.com"},
        )
        assert uow.session.scalar(text("select role from users where id = :u"), {"u": new_id}) == (
            "user"
        )


def test_only_the_user_or_a_real_admin_ends_sessions(app_engine: Engine, people) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    for role in ("user", "admin"):
        with (
            _as(app_engine, people["a"], role=role) as uow,
            pytest.raises(ProgrammingError, match="only the user or an administrator"),
        ):
            uow.tokens.revoke_sessions_of(people["b"], now, "pwned")
    with _as(app_engine, people["a"]) as uow:  # rolled back
        assert uow.tokens.revoke_sessions_of(people["a"], now, "mine") == 1
    with _as(app_engine, OPERATOR.user_id, role="admin") as uow:  # rolled back
        assert uow.tokens.revoke_sessions_of(people["b"], now, "admin") == 1


def test_definer_functions_belong_to_the_owner_and_only_the_app_role_runs_them(
    owner_engine: Engine, settings: Settings
) -> None:
    with owner_engine.connect() as conn:
        owner = conn.scalar(text("select tableowner from pg_tables where tablename = 'users'"))
        rows = conn.execute(
            text(
                "select p.proname, pg_get_userbyid(p.proowner), p.proconfig,"
                " has_function_privilege('public', p.oid, 'execute'),"
                " has_function_privilege(:app, p.oid, 'execute')"
                " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.prosecdef"
            ),
            {"app": settings.db_app_role},
        ).all()
    names = {r[0] for r in rows}
    assert {
        "jarvis_user_id_for_email",
        "jarvis_has_users",
        "jarvis_refresh_token_user",
        "jarvis_browser_ticket_user",
        "jarvis_browser_token_user",
        "jarvis_revoke_sessions",
        "jarvis_rate_limit_hit",
        "jarvis_lockout_lock",
        "jarvis_is_admin",
        "jarvis_fail_stale_runs",
    } <= names
    for name, fn_owner, config, public, app in rows:
        assert fn_owner == owner, name
        assert any(c.startswith("search_path=") for c in config or []), name
        assert (public, app) == (False, True), name


def test_instance_tables_force_row_level_security(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        rows = dict(
            conn.execute(
                text(
                    "select relname, relrowsecurity and relforcerowsecurity from pg_class"
                    " where relname = any(:t)"
                ),
                {"t": ["app_settings", "model_prices", "rate_limit_buckets", "account_lockouts"]},
            ).all()
        )
    assert rows == dict.fromkeys(rows, True) and len(rows) == 4


def test_sign_in_works_when_the_owner_is_not_a_superuser(
    weak_owner_database,  # noqa: F811 - the imported fixture
) -> None:  # type: ignore[no-untyped-def]
    _superuser, settings = weak_owner_database
    services = build_services(
        settings,
        hasher=PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1),
        login_policy=LoginPolicy(account_threshold=2),
        recover_runs=False,
    )
    try:
        admin = services.accounts.register("boss@example.com", PW, ip="203.0.113.5")
        assert admin.role == "admin"  # the very first account
        assert services.accounts.operator() == admin
        user = services.accounts.register("ann@example.com", PW, actor=admin)
        assert services.accounts.principal_for_email("ANN@example.com") == user
        issued = services.sign_in.login("ann@example.com", PW, ip="203.0.113.5")
        # The browser cookie's ticket and token are found by the owner's lookup functions.
        ticket = services.sessions.browser_ticket(user, issued.session_id)
        cookie = services.sessions.redeem_browser_ticket(ticket, ip="203.0.113.5")
        assert services.sessions.resume_browser(cookie.token).principal == user
        again = services.sessions.refresh(issued.refresh_token, ip="203.0.113.5")
        assert again.principal == user
        with pytest.raises(InvalidCredentialsError):
            services.sign_in.login("ann@example.com", "wrong password", ip="203.0.113.6")
        with pytest.raises(AccountLockedError):
            services.sign_in.login("ann@example.com", "wrong password", ip="203.0.113.6")
        assert [p.email for p in services.accounts.list_users(admin)] == [
            "boss@example.com",
            "ann@example.com",
        ]
        assert services.sessions.revoke_all_for(admin, user.user_id, "deactivated") == 1
        with pytest.raises(TokenError):
            services.sessions.refresh(again.refresh_token)
        with pytest.raises(TokenError):
            services.sessions.resume_browser(cookie.token)
        assert services.key_rotation.key_versions_in_use() == {}
        assert services.sign_in.purge_throttles(idle_days=-1) >= 1
    finally:
        services.shutdown()  # else its threads outlive the database (dropped after the test)
        services.engine.dispose()
