"""Tool permissions: default allowed, explicit grant / deny, bulk, reset, secrets, isolation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from jarvis.bootstrap import Services
from jarvis.db.tables import AuditEvent
from jarvis.errors import ValidationError
from jarvis.identity import Principal
from tests import factories

ALL = [
    "memory_search",
    "memory_store",
    "kg_lookup",
    "kg_add_fact",
    "current_time",
    "calculator",
    "usage_report",
    "web_search",
]


@pytest.fixture
def user(services: Services) -> Principal:
    return factories.user(services.uow, "perm")


def _states(services: Services, user: Principal) -> dict[str, str]:
    return {v.tool.id: v.state for v in services.permissions.list_for(user)}


def _offered(services: Services, user: Principal) -> list[str]:
    return [t.id for t in services.permissions.tools_for(user)]


def test_defaults_allow_everything_but_tools_whose_secret_is_missing(
    services: Services, user: Principal
) -> None:
    assert _states(services, user) == dict.fromkeys(ALL, "default")
    assert all(services.permissions.is_allowed(user, t) for t in ALL)
    assert _offered(services, user) == [t for t in ALL if t != "web_search"]
    web = next(v for v in services.permissions.list_for(user) if v.tool.id == "web_search")
    assert web.allowed and not web.secret_available and not web.usable

    services.secrets.create(user, "tavily", None, "tvly-" + "k" * 20)
    assert _offered(services, user) == ALL


def test_grant_deny_and_reset_one(services: Services, user: Principal) -> None:
    services.permissions.set(user, "calculator", False)
    assert _states(services, user)["calculator"] == "denied"
    assert not services.permissions.is_allowed(user, "calculator")
    assert "calculator" not in _offered(services, user)

    services.permissions.set(user, "calculator", True)
    assert _states(services, user)["calculator"] == "allowed"
    assert services.permissions.is_allowed(user, "calculator")

    assert services.permissions.reset(user, "calculator") == 1
    assert _states(services, user)["calculator"] == "default"
    assert services.permissions.reset(user, "calculator") == 0


def test_bulk_deny_grant_and_reset_all(services: Services, user: Principal) -> None:
    assert (
        services.permissions.bulk(user, ["memory_store", "kg_add_fact", "memory_store"], False) == 2
    )
    states = _states(services, user)
    assert states["memory_store"] == states["kg_add_fact"] == "denied"
    assert states["memory_search"] == "default"
    assert _offered(services, user) == [
        "memory_search",
        "kg_lookup",
        "current_time",
        "calculator",
        "usage_report",
    ]

    services.permissions.bulk(user, ALL, False)
    assert _offered(services, user) == [] and not services.permissions.is_allowed(
        user, "current_time"
    )
    services.permissions.bulk(user, ["current_time"], True)
    assert _offered(services, user) == ["current_time"]

    assert services.permissions.reset(user) == len(ALL)
    assert set(_states(services, user).values()) == {"default"}
    assert services.permissions.bulk(user, [], False) == 0


def test_unknown_tools_are_refused_and_never_allowed(services: Services, user: Principal) -> None:
    assert not services.permissions.is_allowed(user, "rm_rf")
    with pytest.raises(ValidationError, match="Unknown tool: rm_rf"):
        services.permissions.bulk(user, ["calculator", "rm_rf"], False)
    assert _states(services, user)["calculator"] == "default"  # nothing of the batch was applied


def test_a_denied_tool_with_its_secret_is_not_offered(services: Services, user: Principal) -> None:
    services.secrets.create(user, "tavily", None, "tvly-" + "k" * 20)
    services.permissions.set(user, "web_search", False)
    assert "web_search" not in _offered(services, user)


def test_changes_are_audited(services: Services, user: Principal) -> None:
    services.permissions.set(user, "calculator", False)
    services.permissions.bulk(user, ["calculator", "current_time"], True)
    services.permissions.reset(user)
    with services.uow(user) as uow:
        rows = uow.session.execute(
            select(AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.user_id == user.user_id, AuditEvent.action.like("tool_permission.%"))
            .order_by(AuditEvent.created_at)
        ).all()
    assert [r.action for r in rows] == [
        "tool_permission.denied",
        "tool_permission.granted",
        "tool_permission.reset",
    ]
    assert rows[1].details["tool_ids"] == ["calculator", "current_time"]


def test_permissions_are_per_user_under_rls(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
) -> None:
    s = committed_services
    a, b = committed_user("perm-a"), committed_user("perm-b")
    s.permissions.bulk(a, ["calculator", "web_search"], False)
    assert _states(s, b)["calculator"] == "default"
    assert s.permissions.is_allowed(b, "calculator") and not s.permissions.is_allowed(
        a, "calculator"
    )
    assert s.permissions.reset(b) == 0  # B's reset-all cannot touch A's rows
    assert _states(s, a)["calculator"] == "denied"
