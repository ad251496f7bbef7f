"""The built-in tool handlers, called as the orchestrator calls them (real services)."""

from __future__ import annotations

import json

import httpx
import pytest

from jarvis.errors import ToolError
from jarvis.tools.builtin import HANDLERS, BuiltinToolServices, ToolContext
from tests import factories
from tests.integration.chat_helpers import fake, make_chat, run_all


def ctx(services, principal, transport: httpx.BaseTransport | None = None) -> ToolContext:  # type: ignore[no-untyped-def]
    tool_services = BuiltinToolServices(
        services.clock, services.memory, services.knowledge_graph, services.usage, services.secrets
    )
    return ToolContext(principal=principal, services=tool_services, http_transport=transport)


def test_every_builtin_tool_has_a_handler_bound(services) -> None:  # type: ignore[no-untyped-def]
    assert set(HANDLERS) == set(services.tools.ids())
    assert all(services.tools.handler(tool_id) is HANDLERS[tool_id] for tool_id in HANDLERS)


def test_memory_store_then_search(services) -> None:  # type: ignore[no-untyped-def]
    user, other = factories.user(services.uow, "tools"), factories.user(services.uow, "other")
    stored = HANDLERS["memory_store"](ctx(services, user), {"content": "My cat is called Tom"})
    assert stored["stored"] is True
    found = HANDLERS["memory_search"](ctx(services, user), {"query": "cat name"})
    assert [r["content"] for r in found["results"]] == ["My cat is called Tom"]
    assert HANDLERS["memory_search"](ctx(services, other), {"query": "cat name"})["results"] == []
    json.dumps(found)


def test_knowledge_graph_add_fact_then_lookup(services) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    added = HANDLERS["kg_add_fact"](
        ctx(services, user),
        {"subject": "Ada", "relation": "works_at", "object": "Analytical Engines"},
    )
    assert added["added"] is True
    found = HANDLERS["kg_lookup"](ctx(services, user), {"query": "Ada"})
    text = json.dumps(found)
    assert "Ada" in text and "works_at" in text and "Analytical Engines" in text


def test_current_time_uses_the_clock_and_time_zones(services) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    utc = HANDLERS["current_time"](ctx(services, user), {})
    assert utc["iso"] == "2026-01-15T12:00:00+00:00" and utc["weekday"] == "Thursday"
    tokyo = HANDLERS["current_time"](ctx(services, user), {"timezone": "Asia/Tokyo"})
    assert tokyo["time"] == "21:00:00"
    with pytest.raises(ToolError, match="Unknown time zone"):
        HANDLERS["current_time"](ctx(services, user), {"timezone": "Mars/Olympus"})


def test_calculator_and_usage_report(services) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    assert (
        HANDLERS["calculator"](ctx(services, user), {"expression": "2 * (3 + 4)"})["result"] == 14
    )
    chat = make_chat(services, fake(lambda m, t: "hello there"))
    conv = chat.conversations.create(user, provider="offline", model="offline-deterministic")
    run_all(chat, user, conv.id, "hi")
    report = HANDLERS["usage_report"](ctx(services, user), {"days": 7})
    assert report["runs"] == 1 and report["tokens"]["total"] > 0
    json.dumps(report)


def test_web_search_needs_a_tavily_key(services) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    with pytest.raises(ToolError, match="Tavily API key"):
        HANDLERS["web_search"](ctx(services, user), {"query": "jarvis"})


def test_web_search_calls_tavily_with_the_users_key(services) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    services.secrets.create(user, "tavily", "default", "tvly-test-key-1234567890abcdef")
    seen: list[httpx.Request] = []

    def tavily(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "results": [
                    {
                        "title": "Jarvis",
                        "url": "https://example.com",
                        "content": "An assistant",
                        "score": 0.9,
                    }
                ]
            },
        )

    result = HANDLERS["web_search"](
        ctx(services, user, httpx.MockTransport(tavily)), {"query": "jarvis", "max_results": 3}
    )
    assert result["results"] == [
        {"title": "Jarvis", "url": "https://example.com", "content": "An assistant"}
    ]
    assert seen[0].headers["authorization"] == "Bearer tvly-test-key-1234567890abcdef"
    assert json.loads(seen[0].content) == {
        "query": "jarvis",
        "max_results": 3,
        "search_depth": "basic",
    }


@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "rejected the API key"), (429, "rate limiting"), (502, "HTTP 502")],
)
def test_web_search_errors_become_tool_errors(services, status: int, message: str) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    services.secrets.create(user, "tavily", "default", "tvly-test-key-1234567890abcdef")
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json={"detail": "no"}))
    with pytest.raises(ToolError, match=message):
        HANDLERS["web_search"](ctx(services, user, transport), {"query": "jarvis"})


def test_web_search_timeout_becomes_a_tool_error(services) -> None:  # type: ignore[no-untyped-def]
    user = factories.user(services.uow, "tools")
    services.secrets.create(user, "tavily", "default", "tvly-test-key-1234567890abcdef")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ToolError, match="timed out"):
        HANDLERS["web_search"](ctx(services, user, httpx.MockTransport(slow)), {"query": "jarvis"})
