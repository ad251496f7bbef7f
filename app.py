"""Jarvis: page config -> services (cached) -> session / login gate -> navigation by role."""

from __future__ import annotations

import streamlit as st

from jarvis.ui.components import show_errors
from jarvis.ui.guard import run_page
from jarvis.ui.navigation import PAGES, pages_for
from jarvis.ui.services import get_services
from jarvis.ui.session import current_principal, sign_out, skip_cookie_wait, write_cookie

st.set_page_config(page_title="Jarvis", page_icon=":material/smart_toy:", layout="wide")

with show_errors(stop=True):
    services = get_services()
    principal = current_principal(services)

if principal is None:
    # Signed out: every known URL shows the sign-in form (no "page not found", no page content);
    # after signing in, the same URL opens the page that was asked for.
    login = [
        st.Page(
            "app_pages/login.py",
            title="Sign in",
            icon=":material/login:",
            url_path="login",
            default=True,
        )
    ]
    login += [
        st.Page("app_pages/login.py", title="Sign in", url_path=spec.url_path) for spec in PAGES
    ]
    page = st.navigation(login, position="hidden")
else:
    sections: dict[str, list[st.Page]] = {}
    for spec in pages_for(principal.role):
        sections.setdefault(spec.section, []).append(
            st.Page(
                spec.path,
                title=spec.title,
                icon=spec.icon,
                url_path=spec.url_path,
                default=spec.url_path == "home",
                visibility="hidden" if spec.hidden else "visible",
            )
        )
    page = st.navigation(sections, expanded=True)  # every page listed, no "View more"
    with st.sidebar:
        st.caption(
            f"Signed in as **{principal.display_name or principal.email}** ({principal.role})"
        )
        if st.button("Log out", key="app_logout", icon=":material/logout:"):
            sign_out(services)
            st.rerun()

# The HttpOnly session cookie is set (at sign-in) and deleted (at logout) by server responses
# to requests a tiny invisible component makes; page content waits until a new session cookie
# is in place, so a click or reload right after signing in cannot run ahead of it.
if not write_cookie() and principal is not None:
    st.caption("Signing you in…")
    st.button(
        "Continue",
        key="app_cookie_continue",
        on_click=skip_cookie_wait,
        help="Only needed if your browser blocks cookies.",
    )
    st.stop()
run_page(page)
