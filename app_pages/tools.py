"""Tools: which tools the assistant may use for you (allow / deny / default), with bulk actions."""

from __future__ import annotations

import streamlit as st

from jarvis.services.permissions import ToolPermissionView
from jarvis.services.secrets import PROVIDER_LABELS
from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.guard import require_user

services, principal = require_user()

STATE_LABELS = {"default": "Default", "allowed": "Allowed", "denied": "Denied"}


def _state_text(view: ToolPermissionView) -> str:
    if view.state == "default":
        return f"{'Allowed' if view.tool.default_allowed else 'Denied'} (default)"
    return STATE_LABELS[view.state]


def _matches(view: ToolPermissionView, text: str, state: str) -> bool:
    if state != "all" and view.state != state:
        return False
    haystack = f"{view.tool.id} {view.tool.name} {view.tool.description} {view.tool.group or ''}"
    haystack = haystack.lower()
    return text.strip().lower() in haystack


def _secret_text(view: ToolPermissionView) -> str:
    if view.tool.required_secret is None:
        return "—"
    label = PROVIDER_LABELS.get(view.tool.required_secret, view.tool.required_secret)
    return f"{label} key" + ("" if view.secret_available else " (missing)")


st.title("Tools")
st.caption(
    "Choose which tools the assistant may use for you. Built-in tools are allowed by default; "
    "tools from MCP servers (named `server.tool`, grouped by server below) are denied until "
    "you allow them, unless your administrator chose otherwise. A tool that needs a key is "
    "only offered once you have saved that key on the Secrets page, and it always runs with "
    "your own key."
)
show_flash()

with show_errors(stop=True):
    views = services.permissions.list_for(principal)

left, right = st.columns([3, 1])
text = left.text_input("Filter", key="tools_filter", placeholder="name or description")
state = right.selectbox(
    "State",
    ["all", "default", "allowed", "denied"],
    key="tools_state_filter",
    format_func=lambda s: "All" if s == "all" else STATE_LABELS[s],
)
shown = [v for v in views if _matches(v, text, state)]
shown_ids = [v.tool.id for v in shown]
usable = sum(v.usable for v in views)
st.caption(
    f"{usable} of {len(views)} tools are offered to the assistant. Bulk actions apply to the "
    f"{len(shown)} tool(s) shown."
)

b1, b2, b3, _ = st.columns([1, 1, 1, 3])
with show_errors():
    if b1.button("Allow all", key="tools_allow_all", disabled=not shown):
        flash(f"Allowed {services.permissions.bulk(principal, shown_ids, True)} tool(s).")
    if b2.button("Deny all", key="tools_deny_all", disabled=not shown):
        flash(f"Denied {services.permissions.bulk(principal, shown_ids, False)} tool(s).")
    if b3.button("Reset to defaults", key="tools_reset_all", disabled=not shown):
        services.permissions.reset(principal, shown_ids)
        flash(f"Reset {len(shown_ids)} tool(s) to their default.")

if not shown:
    st.info("No tool matches the filter.")
    st.stop()

widths = [2, 5, 2, 2, 1, 1]
groups: dict[str | None, list[ToolPermissionView]] = {}
for view in shown:
    groups.setdefault(view.tool.group, []).append(view)

for group, members in groups.items():
    if group is not None:
        st.subheader(f"MCP server: {group}")
    elif len(groups) > 1:
        st.subheader("Built-in tools")
    header = st.columns(widths)
    for col, title in zip(
        header, ["Tool", "Description", "Needs secret", "State", "Allowed", ""], strict=True
    ):
        col.markdown(f"**{title}**" if title else "")
    for view in members:
        tool = view.tool
        cols = st.columns(widths, vertical_alignment="center")
        cols[0].markdown(f"**{tool.name}**  \n`{tool.id}`")
        cols[1].text(tool.description)
        cols[2].text(_secret_text(view))
        cols[3].text(_state_text(view))
        # The key carries the state: after a bulk change the toggle starts from the stored state.
        allowed = cols[4].toggle(
            f"Allow {tool.name}",
            value=view.allowed,
            key=f"tools_toggle_{tool.id}_{view.state}",
            label_visibility="collapsed",
        )
        reset = view.state != "default" and cols[5].button(
            "Reset", key=f"tools_reset_{tool.id}", help="Back to the tool's default"
        )
        with show_errors():
            if allowed != view.allowed:
                services.permissions.set(principal, tool.id, allowed)
                flash(f"{'Allowed' if allowed else 'Denied'} {tool.name}.")
            if reset:
                services.permissions.reset(principal, tool.id)
                flash(f"Reset {tool.name} to its default.")
