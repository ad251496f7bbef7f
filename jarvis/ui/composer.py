"""The chat composer: ``st.chat_input`` at the top level of a page (Streamlit pins it to the
bottom of the window), showing when an answer is in progress instead of taking a second one."""

from __future__ import annotations

import streamlit as st

PLACEHOLDER = "Ask Jarvis…"
ANSWERING = "Jarvis is answering… (Stop to interrupt)"
KEY = "chat_input"


def composer(*, busy: bool, max_chars: int | None = None) -> str | None:
    """The message the user sent, if any; disabled (saying why) while ``busy``."""
    value = st.chat_input(
        ANSWERING if busy else PLACEHOLDER, key=KEY, disabled=busy, max_chars=max_chars
    )
    return value if isinstance(value, str) and not busy else None


__all__ = ["ANSWERING", "KEY", "PLACEHOLDER", "composer"]
