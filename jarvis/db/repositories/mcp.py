"""Registered MCP servers and the tools their last discovery listed (instance-wide rows)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jarvis.db.tables import McpServer, McpTool


class McpServerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def all(self) -> list[McpServer]:
        return list(self.session.scalars(select(McpServer).order_by(McpServer.name)))

    def get(self, server_id: uuid.UUID) -> McpServer | None:
        return self.session.get(McpServer, server_id)

    def by_name(self, name: str) -> McpServer | None:
        return self.session.scalar(select(McpServer).where(McpServer.name == name))

    def add(self, server: McpServer) -> McpServer:
        self.session.add(server)
        self.session.flush()
        return server

    def delete(self, server: McpServer) -> None:
        self.session.delete(server)
        self.session.flush()

    def tools(self, server_ids: Sequence[uuid.UUID] | None = None) -> list[McpTool]:
        stmt = select(McpTool).order_by(McpTool.server_id, McpTool.name)
        if server_ids is not None:
            stmt = stmt.where(McpTool.server_id.in_(list(server_ids)))
        return list(self.session.scalars(stmt))

    def replace_tools(
        self, server_id: uuid.UUID, tools: Sequence[dict[str, Any]], when: datetime
    ) -> None:
        """The server's cached tools become ``tools`` (``name``, ``description``,
        ``input_schema``), all stamped ``when``."""
        self.session.execute(delete(McpTool).where(McpTool.server_id == server_id))
        for tool in tools:
            self.session.add(
                McpTool(
                    server_id=server_id,
                    name=tool["name"],
                    description=tool["description"],
                    input_schema=tool["input_schema"],
                    refreshed_at=when,
                )
            )
        self.session.flush()
