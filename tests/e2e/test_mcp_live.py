"""``/mcp`` in the real one-process app (uvicorn serving ``jarvis.asgi:create_app``): routed
next to the API, its session manager running in the lifespan, the SDK client over real HTTP."""

from __future__ import annotations

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from jarvis.bootstrap import Services
from tests import factories
from tests.async_support import run_async

pytestmark = pytest.mark.slow  # a live server in a subprocess (no browser)


def test_the_live_app_serves_mcp_to_an_api_key(live_app: str, live_services: Services) -> None:
    user = factories.user(live_services.uow, "mcp-live")
    key = live_services.api_keys.create(user, "ide").secret

    refused = httpx2.post(live_app + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert refused.status_code == 401

    async def main() -> set[str]:
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(live_app + "/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await session.call_tool("memory_store", {"content": "The live app remembers."})
            found = await session.call_tool("memory_search", {"query": "remembers"})
            assert "The live app remembers." in found.content[0].text  # type: ignore[union-attr]
            return {t.name for t in (await session.list_tools()).tools}

    assert "memory_store" in run_async(main)
