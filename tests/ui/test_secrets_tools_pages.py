"""The Secrets and Tools pages through AppTest: what a signed-in user sees and can change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlit.testing.v1 import AppTest

from jarvis.identity import Principal
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import open_page

OPENAI_KEY = "sk-proj-" + "Ui7estKey0123456789" + "Qw9Z"
NEW_KEY = "sk-proj-" + "Replaced0123456789x" + "Rt5L"


def _open(
    new_app: Callable[[], AppTest], page: str, email: str = "vault@example.com"
) -> tuple[AppTest, Principal]:
    principal = factories.admin_account(get_services(), email, name="Vault User")
    return open_page(new_app, page, principal), principal


def _everything_shown(at: AppTest) -> str:
    """Every element the page rendered (protos include widget values and table data)."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def _field(at: AppTest, label: str) -> Any:
    """A text input by its label (the secret value fields get a new key after each submit)."""
    [field] = [t for t in at.text_input if t.label == label]
    return field


def _run(at: AppTest) -> AppTest:
    at = at.run()
    assert not at.exception, at.exception
    return at


def test_add_a_secret_see_only_the_last_four_then_replace_and_delete(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = _open(new_app, "app_pages/secrets.py")
    assert [t.value for t in at.title] == ["Secrets"]
    assert any("No secrets yet" in i.value for i in at.info)
    assert _field(at, "Secret value").proto.type == _field(at, "Secret value").proto.PASSWORD

    at.selectbox(key="secrets_provider").set_value("openai")
    at.text_input(key="secrets_name").input("work")
    _field(at, "Secret value").input(OPENAI_KEY)
    at.button(key="secrets_save").click()
    at = _run(at)

    assert any("••••Qw9Z" in s.value and "work" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["Key"]) == ["••••Qw9Z"] and list(table["Name"]) == ["work"]
    assert list(table["Last used"]) == ["never"]
    assert _field(at, "Secret value").value == ""  # never shown again
    shown = _everything_shown(at)
    assert "Qw9Z" in shown and OPENAI_KEY not in shown and OPENAI_KEY[:-4] not in shown
    assert OPENAI_KEY not in repr(at.session_state.to_dict())
    assert get_services().secrets.reveal(principal, "openai", "work").value == OPENAI_KEY

    [secret] = get_services().secrets.list(principal)
    _field(at, "New value").input(NEW_KEY)
    at.button(key=f"secrets_replace_{secret.id}").click()
    at = _run(at)
    assert any("••••Rt5L" in s.value for s in at.success)
    assert list(at.dataframe[0].value["Key"]) == ["••••Rt5L"]
    assert list(at.dataframe[0].value["Last used"]) != ["never"]  # the reveal above used it
    assert NEW_KEY not in _everything_shown(at)

    delete = at.button(key=f"secrets_delete_{secret.id}")
    assert delete.disabled  # needs the confirmation first
    at.checkbox(key=f"secrets_confirm_delete_{secret.id}").check()
    at = _run(at)
    at.button(key=f"secrets_delete_{secret.id}").click()
    at = _run(at)
    assert any("Deleted" in s.value for s in at.success)
    assert get_services().secrets.list(principal) == []
    assert any("No secrets yet" in i.value for i in at.info)


def test_a_malformed_key_shows_a_clear_error_and_saves_nothing(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = _open(new_app, "app_pages/secrets.py")
    at.selectbox(key="secrets_provider").set_value("anthropic")
    _field(at, "Secret value").input("sk-not-anthropic-0123456789abcdef")
    at.button(key="secrets_save").click()
    at = _run(at)
    assert [e.value for e in at.error] == [
        'This does not look like a valid key. An Anthropic key starts with "sk-ant-" followed by '
        'at least 20 letters, digits, "-" or "_".'
    ]
    assert "sk-not-anthropic" not in _everything_shown(at)
    assert get_services().secrets.list(principal) == []

    at.selectbox(key="secrets_provider").set_value("openai_compatible")
    _field(at, "Secret value").input("ollama")
    at.button(key="secrets_save").click()
    at = _run(at)
    assert any("base URL" in e.value for e in at.error)
    assert get_services().secrets.list(principal) == []


def test_tools_page_toggle_filter_and_bulk(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = _open(new_app, "app_pages/tools.py", "tools@example.com")
    permissions = get_services().permissions
    assert [t.value for t in at.title] == ["Tools"]
    assert len(at.toggle) == 8 and all(t.value for t in at.toggle)
    assert any("7 of 8 tools are offered" in c.value for c in at.caption)
    assert any(t.value == "Tavily (web search) key (missing)" for t in at.text)

    # Deny one tool with its toggle.
    at.toggle(key="tools_toggle_calculator_default").set_value(False)
    at = _run(at)
    assert not permissions.is_allowed(principal, "calculator")
    assert any("Denied Calculator" in s.value for s in at.success)
    assert at.toggle(key="tools_toggle_calculator_denied").value is False
    assert any(t.value == "Denied" for t in at.text)
    assert any("6 of 8 tools are offered" in c.value for c in at.caption)

    # Filter, then deny everything shown.
    at.text_input(key="tools_filter").input("memory")
    at = _run(at)
    assert len(at.toggle) == 2
    at.button(key="tools_deny_all").click()
    at = _run(at)
    states = {v.tool.id: v.state for v in permissions.list_for(principal)}
    assert states["memory_search"] == states["memory_store"] == "denied"
    assert states["kg_lookup"] == "default"

    # Per-tool reset, then reset everything shown (filter cleared).
    at.text_input(key="tools_filter").input("")
    at = _run(at)
    at.button(key="tools_reset_calculator").click()
    at = _run(at)
    assert permissions.is_allowed(principal, "calculator")
    at.button(key="tools_reset_all").click()
    at = _run(at)
    assert {v.state for v in permissions.list_for(principal)} == {"default"}
    at.selectbox(key="tools_state_filter").set_value("denied")
    at = _run(at)
    assert any("No tool matches" in i.value for i in at.info)
