"""The tool registry and the built-in tools' metadata."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from jarvis.errors import NotFoundError
from jarvis.tools.registry import ToolRegistry, ToolSpec
from jarvis.tools.specs import BUILTIN_TOOLS, builtin_registry

BUILTIN_IDS = [
    "memory_search",
    "memory_store",
    "kg_lookup",
    "kg_add_fact",
    "current_time",
    "calculator",
    "usage_report",
    "web_search",
]


def test_builtin_tools_are_registered_with_their_secret() -> None:
    registry = builtin_registry()
    assert registry.ids() == BUILTIN_IDS
    assert {t.id: t.required_secret for t in registry.all() if t.required_secret} == {
        "web_search": "tavily"
    }
    for spec in registry:
        assert spec.name and len(spec.description) > 20


@pytest.mark.parametrize("spec", BUILTIN_TOOLS, ids=lambda s: s.id)
def test_parameters_are_valid_json_schema_objects(spec: ToolSpec) -> None:
    Draft202012Validator.check_schema(spec.parameters)
    assert spec.parameters["type"] == "object"
    assert set(spec.parameters.get("required", [])) <= set(spec.parameters["properties"])
    validator = Draft202012Validator(spec.parameters)
    assert not validator.is_valid({"unexpected": 1})  # the model cannot invent arguments


def test_example_arguments_validate() -> None:
    registry = builtin_registry()
    examples = {
        "calculator": {"expression": "2 + 2"},
        "kg_add_fact": {"subject": "Ada", "relation": "works_at", "object": "Acme"},
        "current_time": {},
        "web_search": {"query": "jarvis", "max_results": 3},
    }
    for tool_id, args in examples.items():
        spec = registry.get(tool_id)
        assert spec is not None
        Draft202012Validator(spec.parameters).validate(args)
    assert not Draft202012Validator(registry.require("calculator").parameters).is_valid({})


def test_provider_formats() -> None:
    spec = builtin_registry().require("web_search")
    assert spec.to_openai() == {
        "type": "function",
        "function": {
            "name": "web_search",
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }
    assert spec.to_anthropic() == {
        "name": "web_search",
        "description": spec.description,
        "input_schema": spec.parameters,
    }


def test_lookup_binding_and_duplicates() -> None:
    registry = builtin_registry()
    assert registry.get("nope") is None and "nope" not in registry and "calculator" in registry
    with pytest.raises(NotFoundError):
        registry.require("nope")
    with pytest.raises(NotFoundError):
        registry.bind("nope", lambda ctx, args: {})
    assert registry.handler("calculator") is None
    registry.bind("calculator", lambda ctx, args: {"result": 4})
    handler = registry.handler("calculator")
    assert handler is not None and handler(None, {}) == {"result": 4}
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(ToolSpec("calculator", "Again", "A duplicate tool id."))
    assert len(ToolRegistry()) == 0 and len(registry) == 8


def test_every_builtin_tool_has_a_handler() -> None:
    from jarvis.tools.builtin import HANDLERS

    registry = builtin_registry()
    registry.bind_all(HANDLERS)
    assert all(registry.handler(t) is not None for t in registry.ids())
