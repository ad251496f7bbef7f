"""The MCP servers admin page and the Tools page's MCP groups, through AppTest."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import open_page

#: Discovery starts the stdio test server: slow on a busy machine.
SLOW_RUN = 180


def _run(at: AppTest, timeout: float = 30) -> AppTest:
    at = at.run(timeout=timeout)
    assert not at.exception, at.exception
    return at


def test_admin_registers_a_stdio_server_and_a_user_allows_its_tool(  # type: ignore[no-untyped-def]
    app_settings, new_app: Callable[[], AppTest]
) -> None:
    services = get_services()
    admin = factories.admin_account(services, "mcp-admin@example.com", name="Admin")
    at = open_page(new_app, "app_pages/admin_mcp.py", admin)
    assert [t.value for t in at.title] == ["MCP servers"]
    assert any("No MCP server" in i.value for i in at.info)

    at.text_input(key="mcp_add_name").input("testmcp")
    at.text_input(key="mcp_add_command").input(sys.executable)
    at.text_input(key="mcp_add_args").input("-m tests.mcp_test_server")
    at.text_area(key="mcp_add_credentials").input("TEST_MCP_TOKEN: {composio}")
    at.number_input(key="mcp_add_timeout").set_value(120)
    at.button(key="FormSubmitter:mcp_add_form-Save and discover tools").click()
    at = _run(at, SLOW_RUN)
    assert any("Registered testmcp" in s.value and "tool(s)" in s.value for s in at.success)
    assert any(e.label.startswith("testmcp · stdio · enabled") for e in at.expander)
    shown = "\n".join(t.value for t in at.text)
    assert "testmcp.echo" in shown and "fingerprint" in shown

    # A bad registration names its problem and saves nothing.
    at.text_input(key="mcp_add_name").input("Bad Name")
    at.button(key="FormSubmitter:mcp_add_form-Save and discover tools").click()
    at = _run(at)
    assert any("lowercase letter" in e.value for e in at.error)
    assert [s.name for s in services.mcp.list_servers(admin)] == ["testmcp"]

    user = factories.account(services, "mcp-user@example.com", name="User", actor=admin)
    tools = open_page(new_app, "app_pages/tools.py", user)
    assert any(h.value == "MCP server: testmcp" for h in tools.subheader)
    toggle = tools.toggle(key="tools_toggle_testmcp.echo_default")
    assert toggle.value is False  # denied until allowed
    assert any(t.value == "Denied (default)" for t in tools.text)
    toggle.set_value(True)
    tools = _run(tools)
    assert services.permissions.is_allowed(user, "testmcp.echo")
    assert not services.permissions.is_allowed(admin, "testmcp.echo")
    assert tools.toggle(key="tools_toggle_testmcp.echo_allowed").value is True


def test_the_mcp_page_is_for_admins_only(  # type: ignore[no-untyped-def]
    app_settings, new_app: Callable[[], AppTest]
) -> None:
    services = get_services()
    admin = factories.admin_account(services, "first@example.com", name="First")
    user = factories.account(services, "plain@example.com", name="Plain", actor=admin)
    at = _run(open_page(new_app, "app_pages/home.py", user))
    # Not in a user's navigation at all (an admin's has it).
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/admin_mcp.py")
    assert open_page(new_app, "app_pages/admin_mcp.py", admin).title[0].value == "MCP servers"
