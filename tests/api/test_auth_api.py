"""Health, readiness and the ``/auth`` endpoints over real services: register, login, refresh
rotation with reuse detection, logout, me; failures are problem+json that echo no secret."""

from __future__ import annotations

from tests import factories
from tests.api.conftest import ApiClient, auth, problem, register_and_login


def test_health_and_ready_answer_without_credentials(api: ApiClient) -> None:
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["revision"] == body["head"] and body["head"]


def test_register_signs_in_and_me_says_who(api: ApiClient, signup_open: None) -> None:
    email = factories.unique_email("reg")
    response = api.post(
        "/auth/register",
        json={"email": email, "password": factories.PASSWORD, "display_name": "Reg Ister"},
    )
    assert response.status_code == 201, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer" and pair["access_token"] and pair["refresh_token"]
    assert pair["user"]["email"] == email and pair["user"]["role"] == "user"

    me = api.get("/auth/me", headers=auth(pair["access_token"]))
    assert me.status_code == 200
    assert me.json() == pair["user"] | {"display_name": "Reg Ister"}

    again = api.post("/auth/register", json={"email": email, "password": factories.PASSWORD})
    problem(again, 409, "conflict_error")


def test_register_is_refused_while_signup_is_closed(api: ApiClient) -> None:
    response = api.post(
        "/auth/register",
        json={"email": factories.unique_email("closed"), "password": factories.PASSWORD},
    )
    body = problem(response, 403, "permission_denied_error")
    assert "Sign-up is closed" in body["detail"]


def test_login_returns_an_access_and_a_refresh_token(api: ApiClient) -> None:
    me = register_and_login(api, name="Lo Gin")
    response = api.get("/auth/me", headers=me.headers)
    assert response.status_code == 200
    assert response.json()["email"] == me.email
    assert response.json()["id"] == str(me.user_id)
    assert me.access_token.count(".") == 2  # a JWT
    assert me.refresh_token != me.access_token


def test_a_wrong_password_is_a_401_problem_that_echoes_nothing(api: ApiClient) -> None:
    me = register_and_login(api)
    wrong = "Tr0ub4dor&3-not-it"
    response = api.post("/auth/login", json={"email": me.email, "password": wrong})
    body = problem(response, 401, "invalid_credentials_error")
    assert wrong not in response.text and me.access_token not in response.text
    assert "password" not in body  # no field echoes the input
    assert response.headers["www-authenticate"].startswith("Bearer")

    unknown = api.post(
        "/auth/login", json={"email": factories.unique_email("nobody"), "password": wrong}
    )
    assert problem(unknown, 401)["detail"] == body["detail"]  # no hint the account exists


def test_a_body_that_is_not_valid_names_the_field_without_echoing_it(api: ApiClient) -> None:
    secret_looking = "x" * 2000
    response = api.post("/auth/login", json={"email": "a@example.com", "password": secret_looking})
    body = problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body.password"]
    assert secret_looking not in response.text


def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(api: ApiClient) -> None:
    me = register_and_login(api)
    first = api.post("/auth/refresh", json={"refresh_token": me.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != me.refresh_token
    assert rotated["access_token"] != me.access_token
    assert api.get("/auth/me", headers=auth(rotated["access_token"])).status_code == 200

    replay = api.post("/auth/refresh", json={"refresh_token": me.refresh_token})
    problem(replay, 401, "token_error")
    assert me.refresh_token not in replay.text
    # The replay revoked the whole session: the rotated tokens stop working too.
    problem(api.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]}), 401)
    problem(api.get("/auth/me", headers=auth(rotated["access_token"])), 401)


def test_logout_revokes_the_session(api: ApiClient) -> None:
    me = register_and_login(api)
    other = api.post("/auth/login", json={"email": me.email, "password": factories.PASSWORD})
    other_session = other.json()

    assert api.post("/auth/logout", headers=me.headers).status_code == 204
    problem(api.get("/auth/me", headers=me.headers), 401, "token_error")
    problem(api.post("/auth/refresh", json={"refresh_token": me.refresh_token}), 401)
    # Only that session ended: the other sign-in still works.
    assert api.get("/auth/me", headers=auth(other_session["access_token"])).status_code == 200


def test_no_or_a_forged_token_is_a_401(api: ApiClient) -> None:
    body = problem(api.get("/auth/me"), 401, "token_error")
    assert "Bearer" in body["detail"]
    me = register_and_login(api)
    head, claims, _sig = me.access_token.split(".")
    forged = f"{head}.{claims}.AAAA"
    response = api.get("/auth/me", headers=auth(forged))
    problem(response, 401, "token_error")
    assert forged not in response.text
