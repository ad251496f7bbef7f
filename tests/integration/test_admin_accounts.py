"""User administration: roles, activation, password reset, sign-up switch, audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jarvis.bootstrap import Services
from jarvis.errors import (
    AccountDisabledError,
    ConflictError,
    InvalidCredentialsError,
    PermissionDeniedError,
    TokenError,
)
from tests import factories
from tests.factories import PASSWORD as PW


def test_non_admins_can_do_nothing_here(services: Services) -> None:
    user = factories.account(services, "plain@example.com")
    other = factories.account(services, "other@example.com")
    calls = [
        lambda: services.admin.list_users(user),
        lambda: services.admin.set_role(user, user.user_id, "admin"),
        lambda: services.admin.set_active(user, other.user_id, False),
        lambda: services.admin.reset_password(user, other.user_id, "a new passphrase"),
        lambda: services.admin.audit_log(user),
        lambda: services.accounts.set_signup_open(user, True),
        lambda: services.sessions.revoke_all_for(user, other.user_id, "x"),
    ]
    for number, call in enumerate(calls):
        with pytest.raises(PermissionDeniedError):
            call()
        assert number >= 0
    assert services.sign_in.check_credentials("other@example.com", PW) == other


def test_role_change_applies_to_live_sessions_and_is_audited(services: Services) -> None:
    admin = factories.admin_account(services, "roles-admin@example.com")
    user = factories.account(services, "roles@example.com")
    issued = services.sign_in.login("roles@example.com", PW)
    view = services.admin.set_role(admin, user.user_id, "admin")
    assert view.role == "admin"
    assert services.sessions.authenticate(issued.access_token).role == "admin"
    services.admin.set_role(admin, user.user_id, "user")
    assert services.sessions.check(user.user_id, issued.session_id).role == "user"
    events = services.admin.audit_log(admin, action="user.role_changed")
    # (One test transaction: both events share a timestamp, so compare without order.)
    assert sorted((e.details["from"], e.details["to"]) for e in events) == [
        ("admin", "user"),
        ("user", "admin"),
    ]
    assert all(e.actor_id == admin.user_id and e.user_id == user.user_id for e in events)


def test_the_last_admin_stays(services: Services) -> None:
    admins = [
        u
        for u in services.admin.list_users(factories.admin_account(services, "a1@example.com"))
        if u.role == "admin" and u.is_active
    ]
    actor = factories.admin_account(services, "a2@example.com")
    # Demote every other admin, then the last one refuses.
    for u in admins:
        services.admin.set_role(actor, u.user_id, "user")
    with pytest.raises(ConflictError):
        services.admin.set_role(actor, actor.user_id, "user")
    with pytest.raises(ConflictError):
        services.admin.set_active(actor, actor.user_id, False)


def test_deactivate_and_reactivate(services: Services) -> None:
    admin = factories.admin_account(services, "act-admin@example.com")
    user = factories.account(services, "act@example.com")
    issued = services.sign_in.login("act@example.com", PW)
    assert services.admin.set_active(admin, user.user_id, False).is_active is False
    with pytest.raises(TokenError):
        services.sessions.check(user.user_id, issued.session_id)
    with pytest.raises(AccountDisabledError):
        services.sign_in.check_credentials("act@example.com", PW)
    assert services.admin.set_active(admin, user.user_id, True).is_active is True
    # The old session stays revoked; a new sign-in works.
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    assert services.sign_in.check_credentials("act@example.com", PW) == user
    got = [e.action for e in services.admin.audit_log(admin, user_id=user.user_id)]
    assert "user.deactivated" in got and "user.activated" in got


def test_password_reset_by_an_admin(services: Services) -> None:
    admin = factories.admin_account(services, "reset-admin@example.com")
    user = factories.account(services, "reset@example.com")
    issued = services.sign_in.login("reset@example.com", PW)
    services.admin.reset_password(admin, user.user_id, "temporary passphrase")
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    with pytest.raises(InvalidCredentialsError):
        services.sign_in.check_credentials("reset@example.com", PW)
    assert services.sign_in.check_credentials("reset@example.com", "temporary passphrase") == user
    events = services.admin.audit_log(admin, action="user.password_reset")
    assert len(events) == 1 and "temporary passphrase" not in repr(events)


def test_signup_switch(services: Services) -> None:
    admin = factories.admin_account(services, "switch-admin@example.com")
    services.accounts.set_signup_open(admin, False)
    assert services.accounts.signup_open() is False
    with pytest.raises(PermissionDeniedError):
        services.accounts.register("walkin@example.com", PW)
    services.accounts.set_signup_open(admin, True)
    assert services.accounts.signup_open() is True
    assert services.accounts.register("walkin@example.com", PW).role == "user"
    # Self-registration never grants admin.
    with pytest.raises(PermissionDeniedError):
        services.accounts.register("sneaky@example.com", PW, role="admin")


def test_users_list_and_search(services: Services) -> None:
    admin = factories.admin_account(services, "list-admin@example.com")
    factories.account(services, "findme-zz@example.com")
    found = services.admin.list_users(admin, "findme-zz")
    assert [u.email for u in found] == ["findme-zz@example.com"]
    assert all(not hasattr(u, "password_hash") for u in found)
    assert services.admin.list_users(admin, "%") == [] or all(
        "%" in u.email or "%" in u.display_name for u in services.admin.list_users(admin, "%")
    )


def test_audit_log_filters(services: Services) -> None:
    admin = factories.admin_account(services, "filter-admin@example.com")
    user = factories.account(services, "filtered@example.com")
    services.sign_in.login("filtered@example.com", PW)
    with pytest.raises(InvalidCredentialsError):
        services.sign_in.check_credentials("filtered@example.com", "wrong password 1")
    mine = services.admin.audit_log(admin, user_id=user.user_id)
    assert {"user.registered", "login.success", "login.failure"} <= {e.action for e in mine}
    assert all(user.user_id in (e.user_id, e.actor_id) for e in mine)
    only = services.admin.audit_log(admin, action="login.failure", user_id=user.user_id)
    assert [e.action for e in only] == ["login.failure"]
    assert only[0].user_email == "filtered@example.com"
    future = datetime.now(UTC) + timedelta(days=1)
    assert services.admin.audit_log(admin, since=future) == []
    assert services.admin.audit_log(admin, until=datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert "login.failure" in services.admin.audit_actions(admin)
