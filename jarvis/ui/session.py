"""The signed-in user of this browser session (``st.session_state``)."""

from __future__ import annotations

import streamlit as st

from jarvis.bootstrap import Services
from jarvis.identity import Principal

PRINCIPAL_KEY = "jarvis_principal"


def current_principal(services: Services) -> Principal | None:
    """The signed-in user, re-read from the database on every run (deactivation is immediate)."""
    principal: Principal | None = st.session_state.get(PRINCIPAL_KEY)
    if principal is None:
        return None
    fresh = services.auth.get_principal(principal.user_id)
    if fresh is None:
        sign_out(services)
        return None
    if fresh != principal:
        st.session_state[PRINCIPAL_KEY] = fresh
    return fresh


def sign_in(services: Services, principal: Principal) -> None:
    st.session_state[PRINCIPAL_KEY] = principal


def sign_out(services: Services) -> None:
    st.session_state.pop(PRINCIPAL_KEY, None)
