"""Administration of MCP servers (their tools become Jarvis tools, ``server.tool``).
Administrators only: anyone else gets 403 problem+json. A server's credentials are *provider
names* (each call uses the calling user's own secret of that provider), never a value."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from jarvis.api.deps import CurrentAdmin, ServicesDep
from jarvis.api.problems import PROBLEM_RESPONSES
from jarvis.services.mcp import CredentialSlot, McpServerInput, McpServerView

router = APIRouter(
    prefix="/admin/mcp-servers", tags=["admin", "mcp servers"], responses=PROBLEM_RESPONSES
)


class Credential(BaseModel):
    name: str = Field(max_length=64, examples=["Authorization"])
    prefix: str = Field("", max_length=64, examples=["Bearer "])
    secret_provider: str = Field(max_length=40, examples=["composio"])


class McpServerBody(BaseModel):
    name: str = Field(max_length=32, examples=["composio"])
    transport: Literal["stdio", "http"]
    command: str | None = Field(None, max_length=500)
    args: list[str] = Field(default_factory=list, max_length=50)
    url: str | None = Field(None, max_length=2000)
    headers: list[Credential] = Field(default_factory=list, max_length=10)
    env: list[Credential] = Field(default_factory=list, max_length=10)
    enabled: bool = True
    default_allowed: bool = False
    timeout_seconds: int = 20
    max_result_bytes: int = 16384

    def to_input(self) -> McpServerInput:
        def slots(items: list[Credential]) -> tuple[CredentialSlot, ...]:
            return tuple(
                CredentialSlot(name=c.name, prefix=c.prefix, secret_provider=c.secret_provider)
                for c in items
            )

        return McpServerInput(
            name=self.name,
            transport=self.transport,
            command=self.command,
            args=tuple(self.args),
            url=self.url,
            headers=slots(self.headers),
            env=slots(self.env),
            enabled=self.enabled,
            default_allowed=self.default_allowed,
            timeout_seconds=self.timeout_seconds,
            max_result_bytes=self.max_result_bytes,
        )


class McpTool(BaseModel):
    tool_id: str
    name: str
    description: str
    input_schema: dict[str, Any]


class McpServer(BaseModel):
    id: uuid.UUID
    name: str
    transport: Literal["stdio", "http"]
    command: str | None
    args: list[str]
    url: str | None
    headers: list[Credential]
    env: list[Credential]
    enabled: bool
    default_allowed: bool
    timeout_seconds: int
    max_result_bytes: int
    discovery_error: str | None = Field(description="Why the last discovery failed, if it did.")
    refreshed_at: datetime | None
    tools: list[McpTool]

    @classmethod
    def of(cls, s: McpServerView) -> McpServer:
        return cls(
            id=s.id,
            name=s.name,
            transport=s.transport,
            command=s.command,
            args=list(s.args),
            url=s.url,
            headers=[Credential(**c.to_dict()) for c in s.headers],
            env=[Credential(**c.to_dict()) for c in s.env],
            enabled=s.enabled,
            default_allowed=s.default_allowed,
            timeout_seconds=s.timeout_seconds,
            max_result_bytes=s.max_result_bytes,
            discovery_error=s.discovery_error,
            refreshed_at=s.refreshed_at,
            tools=[
                McpTool(
                    tool_id=t.tool_id,
                    name=t.name,
                    description=t.description,
                    input_schema=t.input_schema,
                )
                for t in s.tools
            ],
        )


class Enabled(BaseModel):
    enabled: bool


@router.get("", response_model=list[McpServer])
def list_servers(admin: CurrentAdmin, services: ServicesDep) -> list[McpServer]:
    """Every registered server with its discovered tools."""
    return [McpServer.of(s) for s in services.mcp.list_servers(admin)]


@router.post("", response_model=McpServer, status_code=status.HTTP_201_CREATED)
def create_server(body: McpServerBody, admin: CurrentAdmin, services: ServicesDep) -> McpServer:
    """Register a server and discover its tools (a failed discovery is in ``discovery_error``)."""
    return McpServer.of(services.mcp.create(admin, body.to_input()))


@router.get("/{server_id}", response_model=McpServer)
def get_server(server_id: uuid.UUID, admin: CurrentAdmin, services: ServicesDep) -> McpServer:
    """One server."""
    return McpServer.of(services.mcp.get(admin, server_id))


@router.put("/{server_id}", response_model=McpServer)
def update_server(
    server_id: uuid.UUID, body: McpServerBody, admin: CurrentAdmin, services: ServicesDep
) -> McpServer:
    """Change a server, then discover its tools again."""
    return McpServer.of(services.mcp.update(admin, server_id, body.to_input()))


@router.post("/{server_id}/enabled", response_model=McpServer)
def set_enabled(
    server_id: uuid.UUID, body: Enabled, admin: CurrentAdmin, services: ServicesDep
) -> McpServer:
    """Enable or disable a server (a disabled server's tools disappear for everyone)."""
    return McpServer.of(services.mcp.set_enabled(admin, server_id, body.enabled))


@router.post("/{server_id}/refresh", response_model=McpServer)
def refresh_server(server_id: uuid.UUID, admin: CurrentAdmin, services: ServicesDep) -> McpServer:
    """Discover the server's tools now."""
    return McpServer.of(services.mcp.refresh(admin, server_id))


@router.delete("/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_server(server_id: uuid.UUID, admin: CurrentAdmin, services: ServicesDep) -> None:
    """Remove a server and its tools."""
    services.mcp.delete(admin, server_id)
