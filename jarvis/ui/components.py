"""Small Streamlit helpers shared by pages: errors and flash messages.

Every service call a page makes goes through :func:`show_errors`, and a change that reruns the
page says what it did with :func:`flash`::

    show_flash()                            # near the title: last run's message, once
    with show_errors(stop=True):            # nothing to draw without it
        views = services.permissions.list_for(principal)
    if st.button("Allow all"):
        with show_errors():                 # an error is shown, the rest of the block skipped
            n = services.permissions.bulk(principal, ids, True)
            flash(f"Allowed {n} tool(s).")  # shown once after the rerun it starts

In a widget callback (which runs before the page script) use ``show_errors(in_callback=True)``
and ``flash(message, rerun=False)``: both are shown by the run that follows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from jarvis.errors import JarvisError, ValidationError

log = logging.getLogger(__name__)

#: Where :func:`flash` leaves its message for the next run.
FLASH_KEY = "jarvis_flash"


def show_error(exc: BaseException) -> None:
    """Show an error kindly: Jarvis errors by their (safe) message, anything else generically."""
    if isinstance(exc, ValidationError):
        st.error(str(exc), icon="✏️")
    elif isinstance(exc, JarvisError):
        st.error(str(exc), icon="⚠️")
    else:
        log.exception("unexpected error on a page")
        st.error("Something went wrong on our side. The error was logged.", icon="⚠️")


@contextmanager
def show_errors(*, stop: bool = False, in_callback: bool = False) -> Iterator[None]:
    """Run the block; a :class:`JarvisError` from it is shown (:func:`show_error`) and the rest
    of the block skipped. With ``stop`` the page also ends there (nothing below makes sense
    without the block's result). In a widget callback (``in_callback``) the error is left for
    the run that follows, like a :func:`flash` message (elements drawn by a callback would land
    above the page)."""
    try:
        yield
    except JarvisError as exc:
        if in_callback:
            flash(exc, rerun=False)
            return
        show_error(exc)
        if stop:
            st.stop()


def flash(message: str | JarvisError, *, rerun: bool = True) -> None:
    """Leave ``message`` (a success text, or an error to show) for the next run of the page,
    which shows it once through :func:`show_flash`; ``rerun`` starts that run now. In a widget
    callback pass ``rerun=False``: the next run follows the callback anyway."""
    st.session_state[FLASH_KEY] = message
    if rerun:
        st.rerun()


def fresh_key(name: str) -> str:
    """The key of a widget that must come back empty after each use (a secret typed into a
    form): ``name`` with a generation that :func:`renew` moves on. Setting such a widget's
    state to "" in a callback is not enough: the browser can keep showing what was typed."""
    return f"{name}#{st.session_state.get(f'{name}#generation', 0)}"


def renew(name: str) -> None:
    """Forget what the :func:`fresh_key` widget ``name`` holds and give it a new, empty one."""
    state = st.session_state
    state.pop(fresh_key(name), None)
    state[f"{name}#generation"] = state.get(f"{name}#generation", 0) + 1


def show_flash() -> None:
    """Show the message :func:`flash` left, once (call it where the message belongs).

    The message has one slot whether or not there is a message: the elements below keep their
    places from run to run, so the run after a message does not draw a second copy of them
    beside the old ones (stale until the run ends) while it is under way."""
    slot = st.empty()
    message = st.session_state.pop(FLASH_KEY, None)
    if isinstance(message, BaseException):
        with slot.container():
            show_error(message)
    elif message:
        slot.success(str(message))
