"""The MCP client adapter: discovery (``tools/list``) and calls (``tools/call``) with the
official ``mcp`` SDK, over stdio (a command an admin typed) or streamable HTTP (a URL an admin
typed, checked by the SSRF guard before each connection).

The SDK is asynchronous; Jarvis calls it from synchronous code (a run's worker thread, a page,
a route), so every operation runs on a private event loop (``anyio.run``) under a hard timeout
(``anyio.fail_after``): a slow server never holds a worker forever. Every failure becomes a
:class:`~jarvis.errors.ToolError` whose message is safe to show: it names the server, never a
header or environment value (those carry the calling user's secret).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import httpx2
from pydantic import ValidationError as PydanticValidationError

from jarvis.errors import OutboundRefusedError, ToolError
from jarvis.llm.outbound_http import guarded_async_transport
from jarvis.security.outbound import OutboundPolicy

# The mcp SDK is imported when a server is first contacted, not with this module (it takes
# over a second, and most processes never use it: the CLI, a server with no MCP tools).
if TYPE_CHECKING:
    from mcp import ClientSession

T = TypeVar("T")

# The SDK's client logs every message it receives at DEBUG: a tool result may carry whatever a
# server echoed (a user's credential included). Jarvis never needs those lines.
logging.getLogger("mcp.client").setLevel(logging.INFO)

#: The longest tool description and schema Jarvis keeps from a server.
MAX_DESCRIPTION = 2000
MAX_TOOLS = 200
#: Tool names Jarvis takes (the MCP spec's characters; short enough for ``server.tool`` ids).
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class McpEndpoint:
    """Where and how to reach one server, with the calling user's credentials already filled
    in (``headers`` for http, ``env`` for stdio). ``repr`` never shows those values."""

    server: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    url: str | None = None
    timeout_seconds: float = 20.0
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DiscoveredTool:
    """One tool a server listed."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class McpCallResult:
    """A tool call's answer: its text content joined (images and other blocks are named, not
    inlined), and whether the server flagged it as an error."""

    text: str
    is_error: bool
    structured: Any = None


class McpClient:
    """Lists and calls the tools of MCP servers (synchronous facade over the async SDK)."""

    def __init__(self, outbound: OutboundPolicy) -> None:
        self._outbound = outbound

    def list_tools(self, endpoint: McpEndpoint) -> list[DiscoveredTool]:
        """The server's tools (every page of ``tools/list``). :class:`ToolError` on failure."""

        from mcp_types import PaginatedRequestParams

        async def work(session: ClientSession) -> list[DiscoveredTool]:
            found: list[DiscoveredTool] = []
            cursor: str | None = None
            while len(found) < MAX_TOOLS:
                params = PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await session.list_tools(params=params)
                found.extend(_discovered(t) for t in page.tools if TOOL_NAME.match(str(t.name)))
                cursor = page.next_cursor
                if not cursor:
                    break
            return found[:MAX_TOOLS]

        return self._run(endpoint, work)

    def call_tool(
        self, endpoint: McpEndpoint, name: str, arguments: dict[str, Any]
    ) -> McpCallResult:
        """Call ``name`` with ``arguments``. :class:`ToolError` when the server cannot be
        reached, is too slow, answers with a protocol error or with something malformed."""

        from mcp_types import CallToolResult

        async def work(session: ClientSession) -> McpCallResult:
            result = await session.call_tool(name, arguments)
            if not isinstance(result, CallToolResult):
                raise ToolError(f"The MCP server {endpoint.server} returned something malformed.")
            return McpCallResult(
                _joined_text(result.content), result.is_error, result.structured_content
            )

        return self._run(endpoint, work)

    # -- plumbing ------------------------------------------------------------------------------

    def _run(self, endpoint: McpEndpoint, work: Callable[[ClientSession], Awaitable[T]]) -> T:
        if endpoint.transport == "http":
            if not endpoint.url:
                raise ToolError(f"The MCP server {endpoint.server} has no URL.")
            try:
                self._outbound.check_url(endpoint.url, field="url")
            except OutboundRefusedError as exc:
                raise ToolError(f"The MCP server {endpoint.server} is refused: {exc}") from None

        async def guarded() -> T:
            with anyio.fail_after(endpoint.timeout_seconds):
                return await self._session(endpoint, work)

        try:
            return _run_sync(guarded, endpoint.timeout_seconds + 10)
        except ToolError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every SDK / transport failure is one tool failure
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise ToolError(_describe(endpoint, exc)) from None

    async def _session(
        self, endpoint: McpEndpoint, work: Callable[[ClientSession], Awaitable[T]]
    ) -> T:
        from mcp import ClientSession
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        if endpoint.transport == "stdio":
            if not endpoint.command:
                raise ToolError(f"The MCP server {endpoint.server} has no command.")
            params = StdioServerParameters(
                command=endpoint.command, args=list(endpoint.args), env=dict(endpoint.env)
            )
            with open(os.devnull, "w", encoding="utf-8") as errlog:
                async with (
                    stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    return await work(session)
        assert endpoint.url is not None
        async with (
            httpx2.AsyncClient(
                headers=dict(endpoint.headers),
                timeout=endpoint.timeout_seconds,
                follow_redirects=False,
                # every connection re-checks where the name points now (DNS rebinding)
                transport=guarded_async_transport(self._outbound),
                trust_env=False,
            ) as http,
            streamable_http_client(endpoint.url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await work(session)


def _run_sync(fn: Callable[[], Awaitable[T]], wait_seconds: float) -> T:
    """Run ``fn`` on a private event loop: in this thread when it has no loop running (a run
    worker, a page), else on a short-lived thread of its own."""
    try:
        import asyncio

        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fn)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mcp") as pool:
        return pool.submit(anyio.run, fn).result(timeout=wait_seconds)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(endpoint: McpEndpoint, exc: BaseException) -> str:
    """A safe, clear message for a failed exchange (no header, env or secret value)."""
    from mcp.shared.exceptions import MCPError

    server = f"The MCP server {endpoint.server}"
    leaves = _leaves(exc)
    if any(isinstance(e, TimeoutError | concurrent.futures.TimeoutError) for e in leaves):
        return f"{server} did not answer within {endpoint.timeout_seconds:g} s."
    for leaf in leaves:
        if isinstance(leaf, ToolError):
            return str(leaf)
        if isinstance(leaf, OutboundRefusedError):  # where the name points now is not allowed
            return f"{server} is refused: {leaf}"
        if isinstance(leaf, MCPError):
            return f"{server} answered with an error: {str(leaf)[:300]}"
        if isinstance(leaf, PydanticValidationError | ValueError | KeyError | TypeError):
            return f"{server} returned something malformed."
        if isinstance(leaf, httpx2.HTTPStatusError):
            return f"{server} answered HTTP {leaf.response.status_code}."
        if isinstance(leaf, OSError | httpx2.TransportError | anyio.BrokenResourceError):
            return f"{server} could not be reached (it may be down)."
        if isinstance(leaf, anyio.ClosedResourceError | anyio.EndOfStream):
            return f"{server} closed the connection (it may have stopped)."
    return f"{server} failed ({type(leaves[0]).__name__})."


def _discovered(tool: Any) -> DiscoveredTool:
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {}}
    return DiscoveredTool(
        name=str(tool.name),
        description=(tool.description or "")[:MAX_DESCRIPTION],
        input_schema=schema,
    )


def _joined_text(blocks: Sequence[Any]) -> str:
    from mcp_types import TextContent

    parts: list[str] = []
    for block in blocks:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{getattr(block, 'type', 'content')} content omitted]")
    return "\n".join(parts)
