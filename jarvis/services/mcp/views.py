"""What the MCP admin page, the admin API and the tool catalog get back (plain data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

Transport = Literal["stdio", "http"]


@dataclass(frozen=True, slots=True)
class CredentialSlot:
    """A header (http) or environment variable (stdio) whose value is ``prefix`` + the
    *calling user's* own secret of ``secret_provider``."""

    name: str
    secret_provider: str
    prefix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "prefix": self.prefix, "secret_provider": self.secret_provider}

    def line(self) -> str:
        """The form's one-line spelling: ``Authorization: Bearer {composio}``."""
        return f"{self.name}: {self.prefix}{{{self.secret_provider}}}"


@dataclass(frozen=True, slots=True)
class McpServerInput:
    """A server as an admin registers or edits it (checked by the service)."""

    name: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    url: str | None = None
    headers: tuple[CredentialSlot, ...] = ()
    env: tuple[CredentialSlot, ...] = ()
    enabled: bool = True
    default_allowed: bool = False
    timeout_seconds: int = 20
    max_result_bytes: int = 16384


@dataclass(frozen=True, slots=True)
class McpToolView:
    """One discovered tool."""

    tool_id: str
    name: str
    description: str
    input_schema: dict[str, Any]
    refreshed_at: datetime


@dataclass(frozen=True, slots=True)
class McpServerView:
    """A registered server with its last discovery."""

    id: uuid.UUID
    name: str
    transport: Transport
    command: str | None
    args: tuple[str, ...]
    url: str | None
    headers: tuple[CredentialSlot, ...]
    env: tuple[CredentialSlot, ...]
    enabled: bool
    default_allowed: bool
    timeout_seconds: int
    max_result_bytes: int
    discovery_error: str | None
    refreshed_at: datetime | None
    updated_at: datetime
    tools: tuple[McpToolView, ...] = field(default=())

    @property
    def credentials(self) -> tuple[CredentialSlot, ...]:
        """The slots this transport uses (headers for http, environment for stdio)."""
        return self.headers if self.transport == "http" else self.env

    def stale(self, now: datetime, max_age_seconds: float) -> bool:
        """Never discovered, or discovered longer ago than ``max_age_seconds``."""
        return self.refreshed_at is None or now - self.refreshed_at > timedelta(
            seconds=max_age_seconds
        )

    def as_input(self) -> McpServerInput:
        """The server as the edit form starts from."""
        return McpServerInput(
            name=self.name,
            transport=self.transport,
            command=self.command,
            args=self.args,
            url=self.url,
            headers=self.headers,
            env=self.env,
            enabled=self.enabled,
            default_allowed=self.default_allowed,
            timeout_seconds=self.timeout_seconds,
            max_result_bytes=self.max_result_bytes,
        )
