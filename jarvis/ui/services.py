"""The app's services, built once per process (``st.cache_resource``); never mutated by pages."""

from __future__ import annotations

import streamlit as st

from jarvis.bootstrap import Services, build_services, provided_services
from jarvis.config import get_settings
from jarvis.logs import configure_logging


def _release(services: Services) -> None:
    """The cache let go of these services (cleared, or the server stops): stop their threads."""
    services.shutdown()


@st.cache_resource(show_spinner=False, on_release=_release)
def _own_services() -> Services:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return build_services(settings)


def get_services() -> Services:
    """The server's services (``jarvis up``: shared with the API), else this app's own
    (``streamlit run``, tests)."""
    return provided_services() or _own_services()
