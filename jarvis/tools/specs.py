"""Metadata of the built-in tools (handlers: :mod:`jarvis.tools.builtin`)."""

from __future__ import annotations

from jarvis.tools.registry import ToolRegistry, ToolSpec


def _object(properties: dict[str, dict[str, object]], required: list[str]) -> dict[str, object]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


BUILTIN_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        id="memory_search",
        name="Memory search",
        description="Search the user's saved memories by meaning. Use it to recall facts, "
        "preferences and earlier conversations before answering.",
        parameters=_object(
            {
                "query": {"type": "string", "description": "What to look for.", "minLength": 1},
                "k": {
                    "type": "integer",
                    "description": "How many results (1-10).",
                    "minimum": 1,
                    "maximum": 10,
                    "default": 5,
                },
            },
            ["query"],
        ),
    ),
    ToolSpec(
        id="memory_store",
        name="Memory store",
        description="Save one short fact or preference about the user for later conversations.",
        parameters=_object(
            {
                "content": {
                    "type": "string",
                    "description": "The fact to remember.",
                    "minLength": 1,
                    "maxLength": 4000,
                },
                "metadata": {"type": "object", "description": "Optional tags."},
            },
            ["content"],
        ),
    ),
    ToolSpec(
        id="kg_lookup",
        name="Knowledge graph lookup",
        description="Find entities in the user's knowledge graph by name or meaning, "
        "with their relations.",
        parameters=_object(
            {
                "query": {
                    "type": "string",
                    "description": "An entity name or description.",
                    "minLength": 1,
                },
                "limit": {
                    "type": "integer",
                    "description": "How many entities (1-10).",
                    "minimum": 1,
                    "maximum": 10,
                    "default": 5,
                },
            },
            ["query"],
        ),
    ),
    ToolSpec(
        id="kg_add_fact",
        name="Knowledge graph: add fact",
        description="Add a fact 'subject -relation-> object' to the user's knowledge graph "
        "(entities are created when missing).",
        parameters=_object(
            {
                "subject": {"type": "string", "description": "The subject entity.", "minLength": 1},
                "relation": {
                    "type": "string",
                    "description": "The relation, e.g. works_at.",
                    "minLength": 1,
                },
                "object": {"type": "string", "description": "The object entity.", "minLength": 1},
            },
            ["subject", "relation", "object"],
        ),
    ),
    ToolSpec(
        id="current_time",
        name="Current time",
        description="The current date and time, in UTC or in an IANA time zone "
        "such as Europe/Paris.",
        parameters=_object(
            {
                "timezone": {
                    "type": "string",
                    "description": "IANA time zone name.",
                    "default": "UTC",
                }
            },
            [],
        ),
    ),
    ToolSpec(
        id="calculator",
        name="Calculator",
        description="Evaluate an arithmetic expression exactly: + - * / // % ** and parentheses.",
        parameters=_object(
            {
                "expression": {
                    "type": "string",
                    "description": "e.g. (2 + 3) * 4",
                    "minLength": 1,
                    "maxLength": 500,
                }
            },
            ["expression"],
        ),
    ),
    ToolSpec(
        id="usage_report",
        name="Usage report",
        description="The user's own token usage and cost over the last days.",
        parameters=_object(
            {
                "days": {
                    "type": "integer",
                    "description": "How many days back (1-366).",
                    "minimum": 1,
                    "maximum": 366,
                    "default": 30,
                }
            },
            [],
        ),
    ),
    ToolSpec(
        id="web_search",
        name="Web search",
        description="Search the web (Tavily) for current information; "
        "returns titles, URLs and snippets.",
        parameters=_object(
            {
                "query": {"type": "string", "description": "The search query.", "minLength": 1},
                "max_results": {
                    "type": "integer",
                    "description": "How many results (1-10).",
                    "minimum": 1,
                    "maximum": 10,
                    "default": 5,
                },
            },
            ["query"],
        ),
        required_secret="tavily",  # noqa: S106 - a provider name, not a password
    ),
)


def builtin_registry() -> ToolRegistry:
    """A new registry holding the built-in tools' metadata (no handlers bound)."""
    return ToolRegistry(BUILTIN_TOOLS)
