"""Admin: MCP servers whose tools become Jarvis tools (register, edit, enable / disable,
delete, refresh discovery, see the discovered tools or the discovery error)."""

from __future__ import annotations

import shlex

import streamlit as st

from jarvis.services.mcp import McpServerInput, McpServerView, form_input
from jarvis.services.secrets import PROVIDERS
from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.guard import require_admin

services, principal = require_admin()

st.title("MCP servers")
st.caption(
    "Tools from Model Context Protocol servers. Each tool appears to every user as "
    "`server.tool` on the Tools page, denied until the user allows it (unless you make it "
    "allowed by default). Calls run as the calling user: each credential line puts that "
    "user's own saved secret into a header (http) or an environment variable (stdio), e.g. "
    f"`Authorization: Bearer {{composio}}`. Providers: {', '.join(PROVIDERS)}. "
    "An http address must be public unless JARVIS_OUTBOUND_ALLOWLIST lists it."
)
show_flash()

if not st.session_state.get("mcp_stale_checked"):
    st.session_state["mcp_stale_checked"] = True
    with st.spinner("Refreshing servers not discovered lately..."), show_errors():
        services.mcp.refresh_stale(principal)

with show_errors(stop=True):
    servers = services.mcp.list_servers(principal)


def server_form(key: str, start: McpServerInput | None) -> McpServerInput | None:
    """The add / edit form; the input when submitted (None otherwise, or when it is invalid)."""
    start = start or McpServerInput(name="", transport="stdio")
    with st.form(f"{key}_form", clear_on_submit=False):
        c = st.columns([2, 1])
        name = c[0].text_input("Name", value=start.name, key=f"{key}_name", placeholder="github")
        transport = c[1].selectbox(
            "Transport",
            ["stdio", "http"],
            index=0 if start.transport == "stdio" else 1,
            key=f"{key}_transport",
        )
        command = st.text_input("Command (stdio)", value=start.command or "", key=f"{key}_command")
        args_text = st.text_input(
            "Arguments (stdio)", value=shlex.join(start.args), key=f"{key}_args"
        )
        url = st.text_input(
            "URL (http, streamable HTTP)",
            value=start.url or "",
            key=f"{key}_url",
            placeholder="https://mcp.example.com/mcp",
        )
        slots = start.headers if start.transport == "http" else start.env
        credentials_text = st.text_area(
            "Credentials, one per line: Name: prefix{provider}",
            value="\n".join(s.line() for s in slots),
            key=f"{key}_credentials",
            placeholder="Authorization: Bearer {composio}",
        )
        n = st.columns(4)
        timeout = n[0].number_input(
            "Timeout (s)", 1, 300, value=start.timeout_seconds, key=f"{key}_timeout"
        )
        max_bytes = n[1].number_input(
            "Result limit (bytes)",
            256,
            1_000_000,
            value=start.max_result_bytes,
            key=f"{key}_max_bytes",
        )
        enabled = n[2].checkbox("Enabled", value=start.enabled, key=f"{key}_enabled")
        default_allowed = n[3].checkbox(
            "Allowed by default", value=start.default_allowed, key=f"{key}_default_allowed"
        )
        submitted = st.form_submit_button("Save and discover tools")
    if not submitted:
        return None
    with show_errors():
        return form_input(
            name=name,
            transport=transport,
            command=command,
            args_text=args_text,
            url=url,
            credentials_text=credentials_text,
            enabled=enabled,
            default_allowed=default_allowed,
            timeout_seconds=int(timeout),
            max_result_bytes=int(max_bytes),
        )
    return None


def show_server(server: McpServerView) -> None:
    state = "enabled" if server.enabled else "disabled"
    title = f"{server.name} · {server.transport} · {state} · {len(server.tools)} tool(s)"
    with st.expander(title, expanded=server.discovery_error is not None):
        where = (
            f"`{shlex.join([server.command or '', *server.args])}`"
            if server.transport == "stdio"
            else f"`{server.url}`"
        )
        st.markdown(f"**Runs:** {where}")
        if server.credentials:
            st.markdown(
                "**Credentials (each user's own):** "
                + ", ".join(f"`{s.line()}`" for s in server.credentials)
            )
        when = (
            server.refreshed_at.strftime("%Y-%m-%d %H:%M UTC") if server.refreshed_at else "never"
        )
        st.caption(
            f"Tools {'allowed' if server.default_allowed else 'denied'} by default · "
            f"timeout {server.timeout_seconds} s · results up to {server.max_result_bytes:,} "
            f"bytes · discovered {when}"
        )
        if server.discovery_error:
            st.error(f"Discovery failed: {server.discovery_error}")
        if server.tools:
            st.markdown("**Tools**")
            for tool in server.tools:
                st.text(f"{tool.tool_id} — {tool.description or '(no description)'}")
        b = st.columns([1, 1, 1, 3])
        with show_errors():
            if b[0].button("Refresh", key=f"mcp_refresh_{server.id}"):
                with st.spinner(f"Discovering the tools of {server.name}..."):
                    done = services.mcp.refresh(principal, server.id)
                flash(
                    f"Could not discover the tools of {done.name}: {done.discovery_error}"
                    if done.discovery_error
                    else f"{done.name}: {len(done.tools)} tool(s) discovered."
                )
            label = "Disable" if server.enabled else "Enable"
            if b[1].button(label, key=f"mcp_toggle_{server.id}"):
                services.mcp.set_enabled(principal, server.id, not server.enabled)
                flash(f"{label}d {server.name}.")
            confirm = b[3].checkbox("Yes, delete it", key=f"mcp_confirm_{server.id}")
            if b[2].button("Delete", key=f"mcp_delete_{server.id}", disabled=not confirm):
                services.mcp.delete(principal, server.id)
                flash(f"Deleted {server.name}.")
        st.markdown("**Edit**")
        edited = server_form(f"mcp_edit_{server.id}", server.as_input())
        if edited is not None:
            with show_errors(), st.spinner("Saving and discovering..."):
                saved = services.mcp.update(principal, server.id, edited)
                flash(f"Saved {saved.name}: {len(saved.tools)} tool(s).")


if not servers:
    st.info("No MCP server is registered yet.")
for server in servers:
    show_server(server)

st.subheader("Register a server")
new = server_form("mcp_add", None)
if new is not None:
    with show_errors(), st.spinner("Registering and discovering..."):
        created = services.mcp.create(principal, new)
        flash(
            f"Registered {created.name}, but discovery failed: {created.discovery_error}"
            if created.discovery_error
            else f"Registered {created.name}: {len(created.tools)} tool(s)."
        )
