"""An MCP server for the tests, written with the official SDK (``MCPServer``).

Run over stdio: ``python -m tests.mcp_test_server`` (the credential arrives in the environment
variable ``TEST_MCP_TOKEN``), or over streamable HTTP: ``python -m tests.mcp_test_server http
PORT`` (the credential arrives in the ``Authorization`` header). Its tools show what they got,
so a test can tell whose credential a call carried.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field

server: MCPServer[Any] = MCPServer(name="jarvis-tests")


def _credential(ctx: Context) -> str:
    request = getattr(ctx.request_context, "request", None)
    headers = getattr(request, "headers", None)
    if headers is not None:
        return str(headers.get("authorization", "(none)"))
    return os.environ.get("TEST_MCP_TOKEN", "(none)")


def fingerprint(credential: str) -> str:
    """Who called, without the credential itself (the tests compare fingerprints)."""
    return hashlib.sha256(credential.encode()).hexdigest()[:16]


@server.tool(description="Echo a message with the fingerprint of the credential it carried.")
def echo(message: Annotated[str, Field(min_length=1, max_length=200)], ctx: Context) -> str:
    return f"echo: {message} | caller: {fingerprint(_credential(ctx))}"


@server.tool(description="Echo the credential itself (a careless server).")
def leak(ctx: Context) -> str:
    return f"you sent {_credential(ctx)}"


@server.tool(description="Wait a number of seconds, then answer.")
async def slow(seconds: float) -> str:
    await anyio.sleep(seconds)
    return "finally"


@server.tool(description="Always fails.")
def broken(ctx: Context) -> str:
    raise ToolError(f"the widget is jammed (credential {_credential(ctx)})")


@server.tool(description="Answer with n characters.")
def big(n: int) -> str:
    return "x" * n


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "http":
        server.run(
            "streamable-http",
            host="127.0.0.1",
            port=int(sys.argv[2]),
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
    else:
        server.run()
