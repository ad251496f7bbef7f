"""The admin MCP-server API (``/admin/mcp-servers``) and what users then see in
``/tool-permissions``: administrators only, SSRF refusals as 422 naming the URL, the discovered
tools governed like built-ins (denied by default here)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests import factories
from tests.api.conftest import ApiClient, auth, problem, register_and_login
from tests.integration.test_mcp_tools import start_http_server


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    process, url = start_http_server()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _admin_headers(api: ApiClient) -> dict[str, str]:
    email = factories.unique_email("mcp-admin")
    factories.admin_account(api.app_services, email)
    login = api.post("/auth/login", json={"email": email, "password": factories.PASSWORD})
    return auth(login.json()["access_token"])


def _body(url: str, name: str) -> dict[str, object]:
    return {
        "name": name,
        "transport": "http",
        "url": url,
        "headers": [{"name": "Authorization", "prefix": "Bearer ", "secret_provider": "composio"}],
        "timeout_seconds": 30,
    }


def test_admins_register_servers_and_users_govern_their_tools(api: ApiClient, mcp_url: str) -> None:
    admin = _admin_headers(api)
    user = register_and_login(api)
    name = "api" + uuid.uuid4().hex[:8]
    problem(api.post("/admin/mcp-servers", json=_body(mcp_url, name), headers=user.headers), 403)

    created = api.post("/admin/mcp-servers", json=_body(mcp_url, name), headers=admin)
    assert created.status_code == 201, created.text
    server = created.json()
    try:
        assert server["discovery_error"] is None
        assert f"{name}.echo" in {t["tool_id"] for t in server["tools"]}
        assert server["headers"] == [
            {"name": "Authorization", "prefix": "Bearer ", "secret_provider": "composio"}
        ]

        tools = {t["tool_id"]: t for t in api.get("/tool-permissions", headers=user.headers).json()}
        echo = tools[f"{name}.echo"]
        assert echo["group"] == name and echo["default_allowed"] is False
        assert echo["allowed"] is False and echo["required_secret"] == "composio"
        assert "fingerprint" in echo["description"]
        allowed = api.post(
            "/tool-permissions",
            json={"tool_id": f"{name}.echo", "allowed": True},
            headers=user.headers,
        ).json()
        assert allowed["allowed"] is True and allowed["source"] == "user"

        off = api.post(
            f"/admin/mcp-servers/{server['id']}/enabled", json={"enabled": False}, headers=admin
        )
        assert off.json()["enabled"] is False
        tools = {t["tool_id"] for t in api.get("/tool-permissions", headers=user.headers).json()}
        assert f"{name}.echo" not in tools
    finally:
        assert api.delete(f"/admin/mcp-servers/{server['id']}", headers=admin).status_code == 204
    problem(api.get(f"/admin/mcp-servers/{server['id']}", headers=admin), 404)


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.7/mcp", "file:///etc/passwd"]
)
def test_internal_addresses_are_refused_naming_the_url(api: ApiClient, url: str) -> None:
    admin = _admin_headers(api)
    body = problem(api.post("/admin/mcp-servers", json=_body(url, "ssrf"), headers=admin), 422)
    assert "url" in str(body)
    assert all(s["name"] != "ssrf" for s in api.get("/admin/mcp-servers", headers=admin).json())
