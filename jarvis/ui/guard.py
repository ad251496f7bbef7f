"""Every page calls one of these first: no signed-in user, no page (deep links included).
``app.py`` runs the chosen page through :func:`run_page`, so an error no widget handled (the
database went away) is shown as its message, never as a traceback."""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from jarvis.bootstrap import Services
from jarvis.db.errors import translate
from jarvis.errors import JarvisError
from jarvis.identity import Principal
from jarvis.ui.components import show_error
from jarvis.ui.services import get_services
from jarvis.ui.session import current_principal

log = logging.getLogger(__name__)


def run_page(page: StreamlitPage) -> None:
    """Run the page ``st.navigation`` chose. A :class:`JarvisError` it let through (say,
    :class:`DatabaseUnavailableError` while PostgreSQL restarts) becomes its kind message; a
    driver error that escaped its unit of work is translated first. Anything else is a bug
    and propagates (tests see it)."""
    try:
        page.run()
    except JarvisError as exc:
        show_error(exc)
    except Exception as exc:
        translated = translate(exc)
        if not isinstance(translated, JarvisError):
            raise
        log.warning("a database error reached the page untranslated", exc_info=exc)
        show_error(translated)


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
