"""Markdown of untrusted text.

Two helpers: :func:`plain_markdown` shows a short text someone else typed (a display name, a
browser's user agent) exactly as typed; :func:`inert_markdown` keeps the formatting of LLM
answers, memories and graph text the agent may have written, but no image.

Streamlit renders ``![alt](url)`` as an ``<img>``: the browser fetches the URL as soon as the
answer shows, with no click. A prompt injection in a tool result (a web page, a stored memory)
could make the model print such an image whose URL carries the user's data — a zero-click
exfiltration channel. :func:`inert_markdown` puts a zero-width space between the ``!`` and the
``[`` of every image, so it renders as ``!`` and a plain link (visible, followed only if the user
clicks it). It is done everywhere, without parsing: inside code the text looks unchanged, and no
difference between a parser here and Streamlit's can leave an image live.
"""

from __future__ import annotations

import re
import string

ZERO_WIDTH_SPACE = "\u200b"
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def plain_markdown(text: str) -> str:
    """``text`` (a name, a user agent: typed by someone else) for a Markdown widget, shown
    as typed: every ASCII punctuation character is backslash-escaped (CommonMark allows it),
    so no image, link, emphasis, ``:color[...]`` or HTML comes out of it; line breaks become
    spaces so no heading or list starts mid-line."""
    flat = " ".join(text.splitlines())
    return _PUNCTUATION.sub(r"\\\1", flat)


def inert_markdown(text: str) -> str:
    """``text`` with no Markdown image left (see the module docstring); the rest unchanged."""
    return text.replace("![", "!" + ZERO_WIDTH_SPACE + "[")


__all__ = ["ZERO_WIDTH_SPACE", "inert_markdown", "plain_markdown"]
