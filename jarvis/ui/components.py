"""Small Streamlit helpers shared by pages."""

from __future__ import annotations

import logging

import streamlit as st

from jarvis.errors import JarvisError, ValidationError

log = logging.getLogger(__name__)


def show_error(exc: BaseException) -> None:
    """Show an error kindly: Jarvis errors by their (safe) message, anything else generically."""
    if isinstance(exc, ValidationError):
        st.error(str(exc), icon="✏️")
    elif isinstance(exc, JarvisError):
        st.error(str(exc), icon="⚠️")
    else:
        log.exception("unexpected error on a page")
        st.error("Something went wrong on our side. The error was logged.", icon="⚠️")
