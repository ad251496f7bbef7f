"""Jarvis as an MCP server (``/mcp``), driven by the official SDK's client over streamable
HTTP: the ``/mcp`` endpoint as ``jarvis.asgi`` routes it, on the real services (committed
data), through an httpx ASGI transport. Each call acts as the API key's user: own memories
only, the user's tool permissions, audited."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.routing import Route

from jarvis.api.mcp import MCP_PATH, JarvisMCP
from jarvis.bootstrap import Services
from jarvis.identity import Principal
from tests.async_support import run_async

T = TypeVar("T")
BASE = "http://testserver"
TOOLS = {"memory_search", "memory_store", "graph_lookup", "graph_add_fact", "usage_report"}


def serve(services: Services, key: str | None, work: Callable[[ClientSession], Awaitable[T]]) -> T:
    """Run ``work`` in an initialised MCP client session authenticated with ``key``."""
    mcp = JarvisMCP(lambda: services)
    app = Starlette(routes=[Route(MCP_PATH, endpoint=mcp)])
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    async def main() -> T:
        async with (
            mcp.session_manager.run(),
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url=BASE, headers=headers
            ) as http,
            streamable_http_client(BASE + MCP_PATH, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)

    return run_async(main)


def call(services: Services, key: str, tool: str, **arguments: Any) -> Any:
    async def work(session: ClientSession) -> Any:
        return await session.call_tool(tool, arguments)

    return serve(services, key, work)


def payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    if result.structured_content is not None:
        data: dict[str, Any] = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return dict(json.loads(result.content[0].text))


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(c, "text", "") for c in result.content)


def key_of(services: Services, principal: Principal) -> str:
    return services.api_keys.create(principal, "mcp test").secret


def test_lists_the_tools(committed_services: Services, committed_user: Any) -> None:
    key = key_of(committed_services, committed_user("mcp"))

    async def work(session: ClientSession) -> set[str]:
        return {t.name for t in (await session.list_tools()).tools}

    assert serve(committed_services, key, work) == TOOLS


def test_stores_and_searches_memories_as_the_keys_user_only(
    committed_services: Services, committed_user: Any
) -> None:
    ada, bob = committed_user("mcp-ada"), committed_user("mcp-bob")
    ada_key, bob_key = key_of(committed_services, ada), key_of(committed_services, bob)

    stored = payload(
        call(committed_services, ada_key, "memory_store", content="Ada's cat is called Biscuit.")
    )
    assert stored["stored"] is True

    found = payload(call(committed_services, ada_key, "memory_search", query="cat name", k=3))
    assert [r["content"] for r in found["results"]] == ["Ada's cat is called Biscuit."]
    [memory] = committed_services.memory.browse(ada)
    assert memory.source == "mcp"

    theirs = payload(call(committed_services, bob_key, "memory_search", query="cat name", k=3))
    assert theirs["results"] == []  # another user's key never sees Ada's memories


def test_graph_facts_and_usage(committed_services: Services, committed_user: Any) -> None:
    key = key_of(committed_services, committed_user("mcp-graph"))

    added = payload(
        call(
            committed_services,
            key,
            "graph_add_fact",
            subject="Ada",
            relation="works_at",
            object="Analytical Engines Ltd",
        )
    )
    assert added["added"] is True and added["fact"]["relation"] == "works_at"
    looked = payload(call(committed_services, key, "graph_lookup", name="Ada"))
    assert looked["entities"][0]["name"] == "Ada"
    assert "Analytical Engines Ltd" in json.dumps(looked["entities"][0])

    report = payload(call(committed_services, key, "usage_report"))
    assert set(report["budget"]) >= {"budget_usd", "spent_usd", "exceeded"}
    assert report["month_to_date_usd"] == "0" or float(report["month_to_date_usd"]) == 0
    assert report["by_model"] == []


@pytest.mark.parametrize("key", [None, "jrv_not-a-real-key-000000000000", "not-a-jarvis-key"])
def test_a_missing_or_bad_key_is_refused(committed_services: Services, key: str | None) -> None:
    mcp = JarvisMCP(lambda: committed_services)
    app = Starlette(routes=[Route(MCP_PATH, endpoint=mcp)])
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/list",
        "params": {},
    }

    async def main() -> httpx2.Response:
        async with (
            mcp.session_manager.run(),
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as http,
        ):
            return await http.post(
                MCP_PATH,
                json=body,
                headers={**headers, "Accept": "application/json, text/event-stream"},
            )

    response = run_async(main)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert key is None or key not in response.text  # the key is never echoed


def test_the_sdk_client_with_a_bad_key_fails(committed_services: Services) -> None:
    async def work(session: ClientSession) -> Any:
        return await session.list_tools()

    with pytest.raises(ExceptionGroup) as info:  # the client's task groups wrap its error
        serve(committed_services, "jrv_wrong-key-0000000000000000", work)
    assert info.group_contains(MCPError, depth=None)


def test_a_denied_tool_is_refused_clearly_and_audited(
    committed_services: Services, committed_user: Any, owner_engine: Engine
) -> None:
    user = committed_user("mcp-deny")
    key = key_of(committed_services, user)
    committed_services.permissions.set(user, "memory_store", False)

    result = call(committed_services, key, "memory_store", content="Should not be kept.")

    assert "You have not allowed the tool memory_store" in error_text(result)
    assert committed_services.memory.browse(user) == []
    payload(call(committed_services, key, "memory_search", query="anything"))  # others still work
    with owner_engine.connect() as conn:
        actions = conn.execute(
            text(
                "select action, details->>'tool_id', details->>'channel' from audit_events"
                " where user_id = :u and action like 'tool.%' order by created_at"
            ),
            {"u": user.user_id},
        ).all()
    assert [tuple(a) for a in actions] == [
        ("tool.denied", "memory_store", "mcp"),
        ("tool.called", "memory_search", "mcp"),
    ]
