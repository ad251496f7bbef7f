"""``/tool-permissions`` over HTTP: every tool allowed by default, allow / deny one or many,
check, the denied list, reset; unknown tools are refused clearly; each user has their own; a
denied tool is really refused to the agent."""

from __future__ import annotations

from tests.api.conftest import ApiClient, problem, register_and_login, sse_frames

TOOLS = {
    "memory_search",
    "memory_store",
    "kg_lookup",
    "kg_add_fact",
    "current_time",
    "calculator",
    "usage_report",
    "web_search",
}


def _states(api: ApiClient, headers: dict[str, str]) -> dict[str, tuple[bool, str]]:
    return {
        t["tool_id"]: (t["allowed"], t["source"])
        for t in api.get("/tool-permissions", headers=headers).json()
    }


def test_every_tool_is_allowed_by_default_and_says_so(api: ApiClient) -> None:
    me = register_and_login(api)
    tools = api.get("/tool-permissions", headers=me.headers).json()
    assert {t["tool_id"] for t in tools} == TOOLS
    assert all(t["allowed"] and t["state"] == "default" and t["source"] == "default" for t in tools)
    assert all(t["updated_at"] is None and t["name"] and t["description"] for t in tools)
    web = next(t for t in tools if t["tool_id"] == "web_search")
    assert web["required_secret"] == "tavily" and not web["secret_available"]
    assert not web["usable"]  # allowed, but no Tavily key yet
    assert api.get("/tool-permissions/denied", headers=me.headers).json() == []
    check = api.get("/tool-permissions/check/calculator", headers=me.headers)
    assert check.json() == {"tool_id": "calculator", "allowed": True}


def test_deny_check_and_reset_one_tool(api: ApiClient) -> None:
    me = register_and_login(api)
    denied = api.post(
        "/tool-permissions", json={"tool_id": "calculator", "allowed": False}, headers=me.headers
    )
    assert denied.status_code == 200, denied.text
    row = denied.json()
    assert row["tool_id"] == "calculator" and not row["allowed"]
    assert row["state"] == "denied" and row["source"] == "user" and row["updated_at"]

    check = api.get("/tool-permissions/check/calculator", headers=me.headers).json()
    assert check == {"tool_id": "calculator", "allowed": False}
    assert [
        t["tool_id"] for t in api.get("/tool-permissions/denied", headers=me.headers).json()
    ] == ["calculator"]
    # An explicit allow is the user's choice too (not the default).
    allowed = api.post(
        "/tool-permissions", json={"toolId": "calculator", "granted": True}, headers=me.headers
    ).json()
    assert allowed["allowed"] and allowed["source"] == "user"

    reset = api.delete("/tool-permissions/calculator", headers=me.headers)
    assert reset.status_code == 200
    assert reset.json()["state"] == "default" and reset.json()["allowed"]
    assert _states(api, me.headers)["calculator"] == (True, "default")


def test_bulk_allows_and_denies_in_one_go_or_changes_nothing(api: ApiClient) -> None:
    me = register_and_login(api)
    body = {
        "permissions": [
            {"tool_id": "memory_store", "allowed": False},
            {"tool_id": "kg_add_fact", "allowed": False},
            {"tool_id": "current_time", "allowed": True},
        ]
    }
    response = api.post("/tool-permissions/bulk", json=body, headers=me.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"changed": 3}
    states = _states(api, me.headers)
    assert states["memory_store"] == (False, "user") and states["kg_add_fact"] == (False, "user")
    assert states["current_time"] == (True, "user") and states["calculator"] == (True, "default")

    unknown = api.post(
        "/tool-permissions/bulk",
        json={
            "permissions": [
                {"tool_id": "calculator", "allowed": False},
                {"tool_id": "rm_rf", "allowed": False},
            ]
        },
        headers=me.headers,
    )
    assert "rm_rf" in problem(unknown, 422, "validation_error")["detail"]
    assert _states(api, me.headers) == states  # nothing changed

    torn = api.post(
        "/tool-permissions/bulk",
        json={
            "permissions": [
                {"tool_id": "calculator", "allowed": False},
                {"tool_id": "calculator", "allowed": True},
            ]
        },
        headers=me.headers,
    )
    assert problem(torn, 422)["errors"][0]["field"] == "body.permissions"
    empty = api.post("/tool-permissions/bulk", json={"permissions": []}, headers=me.headers)
    assert problem(empty, 422)["errors"][0]["field"] == "body.permissions"


def test_an_unknown_tool_is_refused_with_a_clear_message(api: ApiClient) -> None:
    me = register_and_login(api)
    check = problem(api.get("/tool-permissions/check/rm_rf", headers=me.headers), 404)
    assert "rm_rf" in check["detail"] and "calculator" in check["detail"]  # names the real ones
    problem(api.delete("/tool-permissions/rm_rf", headers=me.headers), 404, "not_found_error")
    body = problem(
        api.post(
            "/tool-permissions", json={"tool_id": "rm_rf", "allowed": True}, headers=me.headers
        ),
        422,
    )
    assert body["errors"][0]["field"] == "tool_id" and "rm_rf" in body["detail"]
    missing = problem(
        api.post("/tool-permissions", json={"allowed": True}, headers=me.headers), 422
    )
    assert missing["errors"][0]["field"] == "body.tool_id"
    vague = api.post(
        "/tool-permissions", json={"tool_id": "calculator", "allowed": 0}, headers=me.headers
    )
    assert problem(vague, 422)["errors"][0]["field"] == "body.allowed"  # true or false, not 0


def test_choices_are_per_user(api: ApiClient) -> None:
    alice, bob = register_and_login(api), register_and_login(api)
    api.post(
        "/tool-permissions", json={"tool_id": "calculator", "allowed": False}, headers=alice.headers
    )
    assert _states(api, bob.headers)["calculator"] == (True, "default")
    assert api.get("/tool-permissions/check/calculator", headers=bob.headers).json()["allowed"]
    api.delete("/tool-permissions/calculator", headers=bob.headers)
    assert _states(api, alice.headers)["calculator"] == (False, "user")


def test_a_denied_tool_is_not_used_by_the_agent(api: ApiClient) -> None:
    me = register_and_login(api)
    api.post(
        "/tool-permissions", json={"tool_id": "calculator", "allowed": False}, headers=me.headers
    )
    with api.stream(
        "POST", "/orchestrator/run", json={"message": "what is 6*7"}, headers=me.headers
    ) as response:
        frames = sse_frames(response)
    assert frames[-1].type == "run_completed"
    assert not [f for f in frames if f.type == "tool_call_finished"]
    assert "42" not in frames[-1].data["text"]
