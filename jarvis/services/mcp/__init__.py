"""Admin-registered MCP servers whose tools become Jarvis tools."""

from jarvis.services.mcp.service import DATA_NOTE, McpCatalog, McpService
from jarvis.services.mcp.validation import form_input, parse_args, parse_slots
from jarvis.services.mcp.views import CredentialSlot, McpServerInput, McpServerView, McpToolView

__all__ = [
    "DATA_NOTE",
    "CredentialSlot",
    "McpCatalog",
    "McpServerInput",
    "McpServerView",
    "McpService",
    "McpToolView",
    "form_input",
    "parse_args",
    "parse_slots",
]
