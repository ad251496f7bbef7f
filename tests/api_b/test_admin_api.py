"""``/admin``: users, sign-up, budgets, prices and the audit log — administrators only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date

import pytest
from fastapi.testclient import TestClient

from tests.api_b.conftest import PASSWORD, Account, problem

#: Every admin route with a body that would be valid: a non-admin must get 403 on each.
ADMIN_ROUTES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/admin/users", None),
    ("POST", "/admin/users", {"email": "x@example.com", "password": PASSWORD}),
    ("PUT", "/admin/users/{me}/role", {"role": "admin"}),
    ("PUT", "/admin/users/{me}/active", {"active": True}),
    ("POST", "/admin/users/{me}/password", {"new_password": "another good password"}),
    ("GET", "/admin/users/{me}/budget", None),
    ("PUT", "/admin/users/{me}/budget", {"monthly_budget_usd": "1000"}),
    ("GET", "/admin/signup", None),
    ("PUT", "/admin/signup", {"open": False}),
    ("GET", "/admin/budgets", None),
    ("GET", "/admin/budgets/default", None),
    ("PUT", "/admin/budgets/default", {"monthly_budget_usd": 5}),
    ("GET", "/admin/prices", None),
    (
        "POST",
        "/admin/prices",
        {
            "provider": "openai",
            "model": "free-model",
            "input_per_mtok": 0,
            "output_per_mtok": 0,
            "effective_from": "2024-01-01",
        },
    ),
    ("GET", "/admin/audit", None),
    ("GET", "/admin/audit/actions", None),
]


def test_a_regular_user_gets_403_on_every_admin_route(
    client: TestClient, account: Callable[[str], Account], admin: Account
) -> None:
    bob = account("bob")
    for method, path, body in ADMIN_ROUTES:
        response = client.request(
            method, path.format(me=bob.user_id), json=body, headers=bob.headers
        )
        assert problem(response, 403)["code"] == "permission_denied_error", (method, path)
    # nothing changed: Bob is still a user, sign-up still open, no price was added
    me = client.get("/auth/me", headers=bob.headers).json()
    assert me["role"] == "user"
    assert client.get("/admin/signup", headers=admin.headers).json() == {"open": True}
    prices = client.get("/admin/prices", params={"history": True}, headers=admin.headers).json()
    assert "free-model" not in {p["model"] for p in prices}
    problem(client.get("/admin/users"), 401)


def test_admin_lists_users_and_changes_role_and_activation(
    client: TestClient, account: Callable[[str], Account], admin: Account
) -> None:
    h = admin.headers
    bob = account("bob")
    listed = client.get("/admin/users", params={"q": bob.email}, headers=h)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()
    assert (row["id"], row["role"], row["is_active"]) == (str(bob.user_id), "user", True)
    assert "password" not in str(row).lower()

    promoted = client.put(f"/admin/users/{bob.user_id}/role", json={"role": "admin"}, headers=h)
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert client.get("/admin/users", headers=bob.headers).status_code == 200  # now he may
    demoted = client.put(f"/admin/users/{bob.user_id}/role", json={"role": "user"}, headers=h)
    assert demoted.json()["role"] == "user"
    problem(client.get("/admin/users", headers=bob.headers), 403)

    off = client.put(f"/admin/users/{bob.user_id}/active", json={"active": False}, headers=h)
    assert off.status_code == 200 and off.json()["is_active"] is False
    problem(client.get("/memory", headers=bob.headers), 401)  # his token stopped working
    signed_in = client.post("/auth/login", json={"email": bob.email, "password": PASSWORD})
    assert signed_in.status_code in (401, 403)
    on = client.put(f"/admin/users/{bob.user_id}/active", json={"active": True}, headers=h)
    assert on.json()["is_active"] is True
    again = client.post("/auth/login", json={"email": bob.email, "password": PASSWORD})
    assert again.status_code == 200

    actions = client.get("/admin/audit", params={"user_id": str(bob.user_id)}, headers=h).json()
    assert {"user.role_changed", "user.deactivated", "user.activated"} <= {
        e["action"] for e in actions
    }


def test_admin_creates_a_user_and_resets_a_password(client: TestClient, admin: Account) -> None:
    h = admin.headers
    email = f"carol-{uuid.uuid4().hex[:8]}@example.com"
    made = client.post(
        "/admin/users",
        json={"email": email, "password": PASSWORD, "display_name": "Carol"},
        headers=h,
    )
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "user" and "password" not in made.json()
    carol = made.json()["id"]
    problem(
        client.post("/admin/users", json={"email": email, "password": PASSWORD}, headers=h), 409
    )

    new_password = "a brand new passphrase"
    reset = client.post(
        f"/admin/users/{carol}/password", json={"new_password": new_password}, headers=h
    )
    assert reset.status_code == 204
    assert (
        client.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401
    )
    assert (
        client.post("/auth/login", json={"email": email, "password": new_password}).status_code
        == 200
    )


def test_the_last_admin_stays_an_admin(client: TestClient, admin: Account) -> None:
    h = admin.headers
    users = client.get("/admin/users", headers=h).json()
    # Tests that promote someone demote them again: the fixture's admin is the only one.
    assert [u["id"] for u in users if u["role"] == "admin" and u["is_active"]] == [
        str(admin.user_id)
    ]
    me = f"/admin/users/{admin.user_id}"
    assert problem(client.put(f"{me}/role", json={"role": "user"}, headers=h), 409)["detail"]
    problem(client.put(f"{me}/active", json={"active": False}, headers=h), 409)
    assert client.get("/auth/me", headers=h).json()["role"] == "admin"
    assert client.get("/admin/users", headers=h).status_code == 200


def test_budgets(client: TestClient, account: Callable[[str], Account], admin: Account) -> None:
    h = admin.headers
    bob = account("bob")
    status = client.get(f"/admin/users/{bob.user_id}/budget", headers=h)
    assert status.status_code == 200, status.text
    assert status.json()["source"] in ("default", "admin default")
    assert status.json()["spent_usd"] in ("0", "0.00", "0.000000")

    set_ = client.put(
        f"/admin/users/{bob.user_id}/budget", json={"monthly_budget_usd": "12.5"}, headers=h
    )
    assert set_.status_code == 200, set_.text
    assert set_.json() == {"user_id": str(bob.user_id), "monthly_budget_usd": "12.50"}
    after = client.get(f"/admin/users/{bob.user_id}/budget", headers=h).json()
    assert (after["budget_usd"], after["source"]) == ("12.50", "user")
    overrides = {b["user_id"]: b for b in client.get("/admin/budgets", headers=h).json()}
    assert overrides[str(bob.user_id)]["monthly_budget_usd"] == "12.50"

    cleared = client.put(
        f"/admin/users/{bob.user_id}/budget", json={"monthly_budget_usd": None}, headers=h
    )
    assert cleared.json()["monthly_budget_usd"] is None
    problem(
        client.put(
            f"/admin/users/{uuid.uuid4()}/budget", json={"monthly_budget_usd": 1}, headers=h
        ),
        404,
    )

    old = client.get("/admin/budgets/default", headers=h).json()["monthly_budget_usd"]
    try:
        changed = client.put("/admin/budgets/default", json={"monthly_budget_usd": 42}, headers=h)
        assert changed.status_code == 200 and changed.json() == {"monthly_budget_usd": "42.00"}
        assert client.get("/admin/budgets/default", headers=h).json() == {
            "monthly_budget_usd": "42.00"
        }
        assert (
            client.get(f"/admin/users/{bob.user_id}/budget", headers=h).json()["budget_usd"]
            == "42.00"
        )
    finally:
        client.put("/admin/budgets/default", json={"monthly_budget_usd": old}, headers=h)


def test_prices(client: TestClient, admin: Account) -> None:
    h = admin.headers
    model = f"test-model-{uuid.uuid4().hex[:6]}"
    price = {
        "provider": "openai",
        "model": model,
        "input_per_mtok": "1.25",
        "output_per_mtok": 5,
        "effective_from": "2024-01-01",
    }
    added = client.post("/admin/prices", json=price, headers=h)
    assert added.status_code == 201, added.text
    assert added.json()["input_per_mtok"] in ("1.25", "1.250000")
    problem(client.post("/admin/prices", json=price, headers=h), 409)  # same model and day
    newer = client.post(
        "/admin/prices",
        json={**price, "input_per_mtok": 2, "effective_from": "2025-01-01"},
        headers=h,
    )
    assert newer.status_code == 201
    future = client.post(
        "/admin/prices",
        json={
            **price,
            "input_per_mtok": 9,
            "effective_from": str(date.today().replace(year=date.today().year + 5)),
        },
        headers=h,
    )
    assert future.status_code == 201

    current = [p for p in client.get("/admin/prices", headers=h).json() if p["model"] == model]
    assert [p["effective_from"] for p in current] == ["2025-01-01"]  # in force today
    history = [
        p
        for p in client.get("/admin/prices", params={"history": True}, headers=h).json()
        if p["model"] == model
    ]
    assert len(history) == 3


def test_audit_log_filters_and_pages(
    client: TestClient, account: Callable[[str], Account], admin: Account
) -> None:
    h = admin.headers
    bob = account("bob")
    for role in ("admin", "user", "admin", "user"):
        client.put(f"/admin/users/{bob.user_id}/role", json={"role": role}, headers=h)
    params = {"action": "user.role_changed", "user_id": str(bob.user_id)}
    events = client.get("/admin/audit", params=params, headers=h).json()
    assert [e["details"]["to"] for e in events] == [
        "user",
        "admin",
        "user",
        "admin",
    ]  # newest first
    assert all(e["actor_email"] == admin.email for e in events)
    first = client.get("/admin/audit", params={**params, "limit": 2}, headers=h).json()
    second = client.get(
        "/admin/audit", params={**params, "limit": 2, "offset": 2}, headers=h
    ).json()
    assert [e["id"] for e in first + second] == [e["id"] for e in events]
    assert (
        client.get(
            "/admin/audit", params={**params, "since": "2999-01-01T00:00:00Z"}, headers=h
        ).json()
        == []
    )
    assert "user.role_changed" in client.get("/admin/audit/actions", headers=h).json()


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/admin/users/{id}/role", {"role": "king"}, "role"),
        ("PUT", "/admin/users/{id}/active", {"active": "maybe"}, "active"),
        ("PUT", "/admin/users/{id}/budget", {"monthly_budget_usd": -1}, "monthly_budget_usd"),
        ("PUT", "/admin/users/{id}/budget", {"monthly_budget_usd": "lots"}, "monthly_budget_usd"),
        ("PUT", "/admin/budgets/default", {"monthly_budget_usd": 2_000_000}, "monthly_budget_usd"),
        ("POST", "/admin/users/{id}/password", {"new_password": "short"}, "new_password"),
        ("POST", "/admin/users", {"email": "not an email", "password": PASSWORD}, "email"),
        (
            "POST",
            "/admin/prices",
            {
                "provider": "acme",
                "model": "m",
                "input_per_mtok": 1,
                "output_per_mtok": 1,
                "effective_from": "2024-01-01",
            },
            "provider",
        ),
        (
            "POST",
            "/admin/prices",
            {
                "provider": "openai",
                "model": "m",
                "input_per_mtok": -1,
                "output_per_mtok": 1,
                "effective_from": "2024-01-01",
            },
            "input_per_mtok",
        ),
        (
            "POST",
            "/admin/prices",
            {
                "provider": "openai",
                "model": "m",
                "input_per_mtok": 1,
                "output_per_mtok": 1,
                "effective_from": "soon",
            },
            "effective_from",
        ),
        (
            "POST",
            "/admin/prices",
            {
                "provider": "openai",
                "model": "  ",
                "input_per_mtok": 1,
                "output_per_mtok": 1,
                "effective_from": "2024-01-01",
            },
            "model",
        ),
        ("GET", "/admin/audit?limit=0", None, "limit"),
        ("GET", "/admin/audit?user_id=bob", None, "user_id"),
        ("GET", "/admin/audit?action=a%00b", None, "action"),
        ("GET", "/admin/users?q=a%00b", None, "q"),
        ("GET", "/admin/users/not-a-uuid/budget", None, "user_id"),
    ],
)
def test_bad_admin_input_is_a_422_naming_the_field(
    client: TestClient,
    account: Callable[[str], Account],
    admin: Account,
    method: str,
    path: str,
    body: dict[str, object] | None,
    field: str,
) -> None:
    bob = account("bob")
    response = client.request(method, path.format(id=bob.user_id), json=body, headers=admin.headers)
    problem(response, 422, field)
    assert (
        client.get(f"/admin/users/{bob.user_id}/budget", headers=admin.headers).json()["source"]
        != "user"
    )
