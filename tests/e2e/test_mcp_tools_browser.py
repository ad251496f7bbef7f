"""In a real browser: an admin registers the stdio test MCP server, refreshes it and sees its
tools; a user then allows one of them on the Tools page (denied until allowed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import LiveApp, fill, go_to, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

ADMIN = "mcp.admin@example.com"
USER = "mcp.user@example.com"
SERVER = Path(__file__).resolve().parents[1] / "mcp_test_server.py"
#: Discovery starts the test server (a Python process): slow on a busy machine.
DISCOVERY_MS = 180_000


@pytest.fixture
def live(own_live: LiveApp) -> LiveApp:
    """An app process of its own: the server's tools stay in a process's catalog for seconds
    (and its client in the process), which the worker's next test must not find."""
    return own_live


def test_admin_registers_an_mcp_server_and_a_user_allows_its_tool(  # type: ignore[no-untyped-def]
    live_app: str, live_services: Services, page, browser
) -> None:
    admin = factories.admin_account(live_services, ADMIN, name="Ada")
    factories.account(live_services, USER, name="Uma", actor=admin)
    sign_in(page, live_app, ADMIN)
    go_to(page, "MCP servers")
    page.get_by_role("heading", name="MCP servers", exact=True).wait_for()
    wait_for_app(page)
    page.get_by_text("No MCP server is registered yet.").wait_for()
    fill(page, "Name", "testmcp")
    fill(page, "Command (stdio)", sys.executable)
    fill(page, "Arguments (stdio)", str(SERVER))
    fill(page, "Credentials, one per line: Name: prefix{provider}", "TEST_MCP_TOKEN: {composio}")
    fill(page, "Timeout (s)", "120")
    page.get_by_role("button", name="Save and discover tools").click()
    page.get_by_text("Registered testmcp: 5 tool(s).").wait_for(timeout=DISCOVERY_MS)
    wait_for_app(page)

    page.get_by_text("testmcp · stdio · enabled · 5 tool(s)").click()
    page.get_by_role("button", name="Refresh").click()
    page.get_by_text("testmcp: 5 tool(s) discovered.").wait_for(timeout=DISCOVERY_MS)
    wait_for_app(page)
    page.get_by_text("testmcp · stdio · enabled · 5 tool(s)").click()
    page.get_by_text("testmcp.echo — Echo a message", exact=False).wait_for()

    # The user: the tool is there, grouped under its server, denied until allowed.
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    user_page = context.new_page()
    try:
        sign_in(user_page, live_app, USER)
        user_page.get_by_role("link", name="Tools").click()
        user_page.get_by_role("heading", name="MCP server: testmcp").wait_for()
        wait_for_app(user_page)
        switch = user_page.get_by_role("switch", name="Allow testmcp: echo")
        assert not switch.is_checked()
        switch.locator("xpath=ancestor::label").click()
        user_page.get_by_text("Allowed testmcp: echo.").wait_for()
        user_page.reload()
        wait_for_app(user_page)
        assert user_page.get_by_role("switch", name="Allow testmcp: echo").is_checked()
    finally:
        context.close()

    user = live_services.sign_in.check_credentials(USER, factories.PASSWORD)
    assert live_services.permissions.is_allowed(user, "testmcp.echo")
    assert not live_services.permissions.is_allowed(admin, "testmcp.echo")
