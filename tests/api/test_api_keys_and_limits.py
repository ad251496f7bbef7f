"""Personal API keys (shown once, authenticate, revoked = 401, never listed), the shape of
every error (RFC 9457 problem+json), the body size limit (413) and the per-user and per-address
request rates (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tests.api.conftest import BASE_URL, ApiClient, auth, principal, problem, register_and_login


def test_an_api_key_is_shown_once_authenticates_and_stops_when_revoked(api: ApiClient) -> None:
    me = register_and_login(api)
    created = api.post("/api-keys", json={"name": "laptop script"}, headers=me.headers)
    assert created.status_code == 201, created.text
    key = created.json()
    secret = key["key"]
    assert secret.startswith("jrv_") and secret.startswith(key["prefix"])
    assert len(secret) > len(key["prefix"]) + 20

    who = api.get("/auth/me", headers=auth(secret))
    assert who.status_code == 200 and who.json()["email"] == me.email
    # The key acts as its owner everywhere, e.g. to start a conversation.
    conv = api.post("/conversations", json={"title": "by key"}, headers=auth(secret))
    assert conv.status_code == 201

    listed = api.get("/api-keys", headers=me.headers)
    assert secret not in listed.text
    [row] = listed.json()
    assert row["id"] == key["id"] and row["name"] == "laptop script"
    assert "key" not in row and row["revoked_at"] is None and row["last_used_at"]

    # An API key has no session to sign out of: the answer says what to do instead.
    logout = problem(api.post("/auth/logout", headers=auth(secret)), 422, "validation_error")
    assert "DELETE /api-keys" in logout["detail"] and secret not in logout["detail"]
    assert api.get("/auth/me", headers=auth(secret)).status_code == 200

    assert api.delete(f"/api-keys/{key['id']}", headers=me.headers).status_code == 204
    refused = api.get("/auth/me", headers=auth(secret))
    problem(refused, 401, "token_error")
    assert secret not in refused.text
    assert api.get("/api-keys", headers=me.headers).json()[0]["revoked_at"]


def test_keys_are_private_to_their_owner(api: ApiClient) -> None:
    alice, bob = register_and_login(api), register_and_login(api)
    key = api.post("/api-keys", json={"name": "alice"}, headers=alice.headers).json()
    assert api.get("/api-keys", headers=bob.headers).json() == []
    problem(api.delete(f"/api-keys/{key['id']}", headers=bob.headers), 404, "not_found_error")
    assert api.get("/auth/me", headers=auth(key["key"])).json()["email"] == alice.email


def test_a_made_up_key_is_refused(api: ApiClient) -> None:
    fake = "jrv_deadbeef_" + "A" * 43
    problem(api.get("/auth/me", headers=auth(fake)), 401, "token_error")


def test_errors_are_problem_json(api: ApiClient) -> None:
    me = register_and_login(api)
    missing = problem(api.get("/no-such-thing", headers=me.headers), 404)
    assert missing["type"] == "about:blank" and missing["title"] == "Not found"

    problem(api.put("/auth/me", headers=me.headers), 405)

    schema = problem(api.post("/api-keys", json={"name": 7}, headers=me.headers), 422)
    assert schema["code"] == "validation_error"
    assert schema["errors"][0]["field"] == "body.name" and schema["errors"][0]["message"]

    # A service's ValidationError: 422 with its field and message.
    service = problem(api.post("/api-keys", json={"name": "  "}, headers=me.headers), 422)
    assert service["errors"] == [{"field": "name", "message": service["detail"]}]

    not_json = api.post(
        "/api-keys",
        content=b"{not json",
        headers={**me.headers, "Content-Type": "application/json"},
    )
    assert problem(not_json, 422)["errors"][0]["field"].startswith("body")


def test_a_body_over_the_limit_is_a_413_and_the_route_never_runs(
    make_api: Callable[..., ApiClient],
) -> None:
    api = make_api(api_max_body_bytes=1024)
    me = register_and_login(api)
    big = {"title": "x" * 150, "model": "m" * 190, "padding": "p" * 2000}
    declared = api.post("/conversations", json=big, headers=me.headers)
    body = problem(declared, 413, "request_body_too_large")
    assert "1,024 bytes" in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"title": "'
        for _ in range(10):
            yield b"y" * 200
        yield b'"}'

    streamed = api.post(
        "/conversations",
        content=chunks(),
        headers={**me.headers, "Content-Type": "application/json"},
    )
    problem(streamed, 413, "request_body_too_large")
    assert api.get("/conversations", headers=me.headers).json() == []
    small = api.post("/conversations", json={"title": "fits"}, headers=me.headers)
    assert small.status_code == 201


def test_over_the_per_user_rate_a_429_says_when_to_retry(
    make_api: Callable[..., ApiClient],
) -> None:
    limit = 3
    api = make_api(api_requests_per_minute=limit)
    me = register_and_login(api)
    statuses: list[int] = []
    refused = None
    # Windows are fixed minutes: crossing a boundary resets the count once at most.
    for _ in range(2 * limit + 2):
        response = api.get("/auth/me", headers=me.headers)
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused = response
            break
    assert refused is not None, statuses
    assert statuses[:limit] == [200] * limit
    body = problem(refused, 429, "rate_limit_error")
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60 and body["retry_after"] == wait
    assert str(limit) in body["detail"]

    # The limit is per user: API keys of the same user share it.
    key = api.app_services.api_keys.create(principal(api, me), "second key")
    problem(api.get("/auth/me", headers=auth(key.secret)), 429)
    # Someone else is not affected.
    other = register_and_login(api)
    assert api.get("/auth/me", headers=other.headers).status_code == 200


def test_over_the_per_address_rate_everyone_there_is_refused_and_others_are_not(
    make_api: Callable[..., ApiClient],
) -> None:
    limit = 3
    api = make_api(api_requests_per_minute=100, api_requests_per_minute_per_ip=limit)
    alice, bob, carol = (register_and_login(api) for _ in range(3))

    def client_at(address: str) -> ApiClient:
        client = ApiClient(api.app, base_url=BASE_URL, client=(address, 50000))
        client.app_services = api.app_services
        return client

    with client_at("203.0.113.7") as office, client_at("198.51.100.9") as home:
        statuses: list[int] = []
        refused = None
        # Two people at one address share its limit; fixed minutes: at most one reset.
        for who in [alice, bob] * (limit + 1):
            response = office.get("/auth/me", headers=who.headers)
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused = response
                break
        assert refused is not None, statuses
        assert statuses[:limit] == [200] * limit
        body = problem(refused, 429, "rate_limit_error")
        assert str(limit) in body["detail"] and 1 <= body["retry_after"] <= 60
        # Another address is not affected, and neither are alice's and bob's own limits.
        assert home.get("/auth/me", headers=carol.headers).status_code == 200
        assert home.get("/auth/me", headers=alice.headers).status_code == 200


def test_the_openapi_document_lists_every_endpoint_and_keeps_values_write_only(
    api: ApiClient,
) -> None:
    docs = api.get("/docs")
    assert docs.status_code == 200 and "/api/v1/openapi.json" in docs.text
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    expected = {
        "/secrets": {"get", "post"},
        "/secrets/{secret_id}": {"get", "patch", "put", "delete"},
        "/tool-permissions": {"get", "post"},
        "/tool-permissions/denied": {"get"},
        "/tool-permissions/check/{tool_id}": {"get"},
        "/tool-permissions/bulk": {"post"},
        "/tool-permissions/{tool_id}": {"delete"},
        "/usage": {"get"},
        "/usage/daily": {"get"},
        "/usage/current-month": {"get"},
        "/usage/runs": {"get"},
        "/orchestrator/run": {"post"},
        "/chat": {"post"},
        "/runs/{run_id}/events": {"get"},
        "/auth/refresh": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    errors = paths["/usage"]["get"]["responses"]
    assert list(errors["422"]["content"]) == ["application/problem+json"]  # what is sent
    assert list(errors["200"]["content"]) == ["application/json"]
    assert {p["name"] for p in paths["/usage"]["get"]["parameters"]} >= {"from", "to", "model"}
    schemas = doc["components"]["schemas"]
    assert schemas["NewSecret"]["properties"]["value"]["writeOnly"] is True
    assert "value" not in schemas["Secret"]["properties"]
    assert schemas["Totals"]["properties"]["cost_usd"]["type"] == "string"
