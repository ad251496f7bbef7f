"""Jarvis as an MCP server at ``/mcp`` (streamable HTTP, the official ``mcp`` SDK).

Any MCP client (Claude Desktop, an IDE) reaches the user's memory, knowledge graph and usage
with a personal API key (``Authorization: Bearer jrv_...``). Each tool acts as the key's user:
the same row-level security, request limits (``JARVIS_API_REQUESTS_PER_MINUTE``, per key and
per address) and tool permissions as the agent — a tool the user denied on the Tools page is
refused here too — and each call is audited (``tool.called`` / ``tool.denied``, channel
``mcp``).

The transport is stateless with JSON replies: every POST carries its own key, nothing is kept
between requests, so any app process can answer any request. Like a route, each tool parses
its arguments, calls one service and returns plain JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.types import Receive, Scope, Send

from jarvis.api.deps import principal_for
from jarvis.bootstrap import Services
from jarvis.errors import JarvisError, RateLimitError, TokenError
from jarvis.identity import Principal
from jarvis.security.client_ip import client_ip
from jarvis.services.memory import MAX_CONTENT, MAX_QUERY

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
CHANNEL = "mcp"
MAX_K = 10
_PRINCIPAL = "jarvis_principal"
_IP = "jarvis_client_ip"

#: MCP tool name -> the agent tool whose per-user permission governs it.
TOOL_PERMISSIONS = {
    "memory_search": "memory_search",
    "memory_store": "memory_store",
    "graph_lookup": "kg_lookup",
    "graph_add_fact": "kg_add_fact",
    "usage_report": "usage_report",
}

T = TypeVar("T")


class JarvisMCP:
    """The MCP server (its tools) and the authenticated ASGI endpoint that serves it.

    ``services``: a callable returning the process's services (built by the lifespan, after
    this object). The object is the ASGI app to route ``/mcp`` to; run
    ``session_manager.run()`` inside the lifespan.
    """

    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services
        self.server: MCPServer[Any] = MCPServer(
            name="jarvis",
            instructions=(
                "The user's Jarvis: their long-term memory, knowledge graph and usage. "
                "Search memory before asking the user something they may have told Jarvis."
            ),
        )
        # Builds the session manager; the returned Starlette app is not used (see endpoint).
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            # Every request carries an API key: a rebound DNS name gains a page nothing.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._register_tools()

    @property
    def session_manager(self) -> Any:
        return self.server.session_manager

    # -- HTTP: authentication before the SDK sees the request ---------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app at ``/mcp`` (an instance, not a function: Starlette mounts it as is): 401 without a valid API key, 429 over the limits."""
        if scope["type"] != "http":
            await self.session_manager.handle_request(scope, receive, send)
            return
        services = self._services()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        peer = scope["client"][0] if scope.get("client") else None
        ip = client_ip(peer, headers, services.settings.trusted_proxies)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(services.api_keys.prefix):
            await _refuse(send, 401, "Send Authorization: Bearer <your Jarvis API key (jrv_...)>.")
            return
        try:
            principal = await anyio.to_thread.run_sync(principal_for, services, token, ip)
        except TokenError as exc:
            await _refuse(send, 401, str(exc))
            return
        except RateLimitError as exc:
            await _refuse(send, 429, str(exc), retry_after=exc.retry_after)
            return
        state = {**scope.get("state", {}), _PRINCIPAL: principal, _IP: ip}
        await self.session_manager.handle_request(dict(scope, state=state), receive, send)

    # -- the tools ---------------------------------------------------------------------------

    def _register_tools(self) -> None:
        tool = self.server.tool

        @tool(description="Search the user's long-term memory by meaning; best matches first.")
        async def memory_search(
            query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY)],
            ctx: Context,
            k: Annotated[int, Field(ge=1, le=MAX_K)] = 5,
        ) -> dict[str, Any]:
            hits = await self._call(
                ctx, "memory_search", lambda s, p: s.memory.search(p, query, k=k)
            )
            return {
                "query": query,
                "results": [
                    {
                        "id": str(h.id),
                        "content": h.content,
                        "score": round(float(h.score), 4),
                        "created_at": h.created_at.isoformat() if h.created_at else None,
                    }
                    for h in hits
                ],
            }

        @tool(description="Store one thing to remember about the user (a fact, a preference).")
        async def memory_store(
            content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT)], ctx: Context
        ) -> dict[str, Any]:
            view = await self._call(
                ctx, "memory_store", lambda s, p: s.memory.store(p, content, source=CHANNEL)
            )
            return {"stored": True, "id": str(view.id), "content": view.content}

        @tool(description="Look up entities of the user's knowledge graph by name, with facts.")
        async def graph_lookup(
            name: Annotated[str, Field(min_length=1, max_length=200)], ctx: Context
        ) -> dict[str, Any]:
            found = await self._call(
                ctx, "graph_lookup", lambda s, p: s.knowledge_graph.lookup(p, name)
            )
            return {"query": name, "entities": [e.to_dict() for e in found]}

        @tool(description="Add a fact 'subject -relation-> object' to the user's knowledge graph.")
        async def graph_add_fact(
            subject: Annotated[str, Field(min_length=1, max_length=200)],
            relation: Annotated[str, Field(min_length=1, max_length=100)],
            object: Annotated[str, Field(min_length=1, max_length=200)],  # noqa: A002 - the name clients see
            ctx: Context,
        ) -> dict[str, Any]:
            fact = await self._call(
                ctx,
                "graph_add_fact",
                lambda s, p: s.knowledge_graph.add_fact(p, subject, relation, object),
            )
            return {"added": fact.created, "fact": fact.to_dict()}

        @tool(
            description="The user's spend: this month so far against their monthly budget, and "
            "the models they spent most on (last 30 days)."
        )
        async def usage_report(ctx: Context) -> dict[str, Any]:
            report = await self._call(
                ctx, "usage_report", lambda s, p: s.usage.usage_report(p, days=30)
            )
            plain: dict[str, Any] = json.loads(json.dumps(report, default=str))
            return plain

    async def _call(self, ctx: Context, tool: str, work: Callable[[Services, Principal], T]) -> T:
        """Run ``work`` as the request's user after the tool permission check (both audited
        and on a worker thread: the services are synchronous)."""
        request = ctx.request_context.request
        state = request.scope.get("state", {}) if request is not None else {}
        principal = state.get(_PRINCIPAL)
        if not isinstance(principal, Principal):  # never: the endpoint authenticated it
            raise ToolError("Not authenticated.")
        services = self._services()

        def run() -> T:
            services.permissions.authorize_call(
                principal, TOOL_PERMISSIONS[tool], channel=CHANNEL, ip=state.get(_IP)
            )
            return work(services, principal)

        try:
            return await anyio.to_thread.run_sync(run)
        except JarvisError as exc:  # safe to show (validation, permission, budget)
            raise ToolError(str(exc)) from exc
        except Exception as exc:
            log.exception("mcp tool failed", extra={"tool": tool})
            raise ToolError(f"The tool {tool} failed unexpectedly.") from exc


async def _refuse(send: Send, status: int, message: str, *, retry_after: float = 0.0) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="jarvis"'))
    if retry_after:
        headers.append((b"retry-after", str(max(1, round(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
