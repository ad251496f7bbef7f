"""Every page calls one of these first: no signed-in user, no page (deep links included)."""

from __future__ import annotations

import streamlit as st

from jarvis.bootstrap import Services
from jarvis.identity import Principal
from jarvis.ui.services import get_services
from jarvis.ui.session import current_principal


def require_user() -> tuple[Services, Principal]:
    """Return the services and the signed-in user, or stop the page with a sign-in message."""
    services = get_services()
    principal = current_principal(services)
    if principal is None:
        st.warning("Please sign in to see this page.")
        st.stop()
    assert principal is not None
    return services, principal


def require_admin() -> tuple[Services, Principal]:
    """Like :func:`require_user`, for administrators only."""
    services, principal = require_user()
    if not principal.is_admin:
        st.error("This page is for administrators.")
        st.stop()
    return services, principal
