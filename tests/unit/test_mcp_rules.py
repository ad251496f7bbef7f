"""Pure rules of MCP tools: wire names for model function calling, the registry's attached
sources, and how the admin form's credential lines and arguments are read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from jarvis.errors import ValidationError
from jarvis.services.mcp import CredentialSlot, form_input, parse_args, parse_slots
from jarvis.tools.registry import Handler, ToolSpec, wire_name
from jarvis.tools.specs import builtin_registry

OPENAI_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class Source:
    def __init__(self, specs: Sequence[ToolSpec]) -> None:
        self._specs = list(specs)

    def specs(self) -> Sequence[ToolSpec]:
        return self._specs

    def handler(self, tool_id: str) -> Handler | None:
        def run(_ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
            return {"ran": tool_id, **args}

        return run if any(s.id == tool_id for s in self._specs) else None


def test_dotted_ids_become_valid_function_names_and_resolve_back() -> None:
    import re

    assert wire_name("github.create_issue") == "github__create_issue"
    assert wire_name("calculator") == "calculator"
    assert wire_name("srv.a.b c") == "srv__a_b_c"
    long = wire_name("s" * 32 + "." + "t" * 64)
    assert len(long) == 64 and re.match(OPENAI_NAME, long)
    spec = ToolSpec("github.create_issue", "Create issue", "Opens an issue.", group="github")
    assert spec.to_openai()["function"]["name"] == "github__create_issue"
    assert spec.to_anthropic()["name"] == "github__create_issue"

    registry = builtin_registry()
    registry.attach(Source([spec, ToolSpec("calculator", "Impostor", "Not the real one.")]))
    assert registry.get("github__create_issue") is spec
    assert registry.get("github.create_issue") is spec
    assert "github.create_issue" in registry and len(registry) == 9
    assert registry.get("calculator").name == "Calculator"  # type: ignore[union-attr]
    handler = registry.handler("github.create_issue")
    assert handler is not None and handler(None, {"x": 1}) == {"ran": "github.create_issue", "x": 1}
    assert registry.handler("nope") is None
    # Attaching again under the same key replaces the source (one MCP catalog per registry).
    registry.attach(Source([]))
    assert "github.create_issue" not in registry and len(registry) == 8


def test_credential_lines_name_a_header_or_variable_a_prefix_and_a_provider() -> None:
    assert parse_slots("Authorization: Bearer {composio}\n\nX-Team:{custom}", field="headers") == (
        CredentialSlot(name="Authorization", prefix="Bearer ", secret_provider="composio"),
        CredentialSlot(name="X-Team", prefix="", secret_provider="custom"),
    )
    for bad in ("Authorization Bearer {composio}", "Authorization: Bearer composio", "A: {x} y"):
        with pytest.raises(ValidationError) as refused:
            parse_slots(bad, field="headers")
        assert refused.value.field == "headers" and "Line 1" in str(refused.value)
    assert parse_args('-m "my server" --flag') == ("-m", "my server", "--flag")
    with pytest.raises(ValidationError):
        parse_args('-m "unclosed')


def test_the_form_keeps_only_what_its_transport_uses() -> None:
    data = form_input(
        name="web",
        transport="http",
        command="ignored",
        args_text="ignored too",
        url="https://mcp.example.com/mcp",
        credentials_text="Authorization: Bearer {composio}",
        enabled=True,
        default_allowed=False,
        timeout_seconds=20,
        max_result_bytes=4096,
    )
    assert data.command is None and data.args == () and data.env == ()
    assert data.headers == (CredentialSlot("Authorization", "composio", "Bearer "),)
