"""Which pages each role sees. Each capability adds its pages here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py
    title: str
    icon: str
    url_path: str
    section: str = "Jarvis"
    admin_only: bool = False
    #: Reached by links only (a run's trace), not listed in the menu.
    hidden: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("app_pages/home.py", "Home", ":material/home:", "home"),
    PageSpec("app_pages/chat.py", "Chat", ":material/chat:", "chat"),
    PageSpec("app_pages/usage.py", "Usage", ":material/bar_chart:", "usage"),
    PageSpec("app_pages/memory.py", "Memory", ":material/psychology:", "memory"),
    PageSpec("app_pages/graph.py", "Knowledge graph", ":material/hub:", "graph"),
    PageSpec("app_pages/trace.py", "Trace", ":material/timeline:", "trace", hidden=True),
    PageSpec("app_pages/secrets.py", "Secrets", ":material/key:", "secrets", section="Settings"),
    PageSpec("app_pages/tools.py", "Tools", ":material/build:", "tools", section="Settings"),
    PageSpec("app_pages/account.py", "Account", ":material/person:", "account", section="Settings"),
    PageSpec(
        "app_pages/admin_users.py",
        "Users",
        ":material/group:",
        "admin-users",
        section="Admin",
        admin_only=True,
    ),
    PageSpec(
        "app_pages/admin_audit.py",
        "Audit log",
        ":material/policy:",
        "admin-audit",
        section="Admin",
        admin_only=True,
    ),
    PageSpec(
        "app_pages/admin_prices.py",
        "Prices & budgets",
        ":material/payments:",
        "admin-prices",
        section="Admin",
        admin_only=True,
    ),
    PageSpec(
        "app_pages/admin_system.py",
        "System",
        ":material/dns:",
        "admin-system",
        section="Admin",
        admin_only=True,
    ),
    PageSpec(
        "app_pages/admin_mcp.py",
        "MCP servers",
        ":material/extension:",
        "admin-mcp",
        section="Admin",
        admin_only=True,
    ),
)


#: The trace page's URL path; ``?run=<id>`` names the run.
TRACE_PAGE = "app_pages/trace.py"


def trace_link(run_id: object) -> str:
    """The relative URL of a run's trace (for a table's link column)."""
    return f"trace?run={run_id}"


def pages_for(role: str) -> list[PageSpec]:
    """The pages a signed-in user with ``role`` may open."""
    return [p for p in PAGES if role == "admin" or not p.admin_only]
