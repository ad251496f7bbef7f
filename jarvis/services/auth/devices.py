"""How the Account page names a session: "Chrome on Linux · 2 hours ago · this device".

A deliberately small User-Agent reading (browser family and operating system, nothing more):
the tokens browsers have sent for a decade, checked in the order that tells look-alikes apart
(Edge and Opera also say "Chrome", Chrome also says "Safari", Android also says "Linux").
Anything else is "an unknown browser"; programs (curl, the openai SDK, python) are named as such.
Pure: no database, unit-tested on real User-Agent strings.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

# (token in the User-Agent, browser name), first match wins.
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("Opera", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Vivaldi/", "Vivaldi"),
    ("YaBrowser/", "Yandex Browser"),
    ("FxiOS/", "Firefox"),
    ("Firefox/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_OPERATING_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("Windows", "Windows"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Android", "Android"),
    ("Macintosh", "macOS"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
)
_PROGRAMS = re.compile(
    r"^(curl|Wget|python-requests|python-httpx|httpx|OpenAI|Anthropic|aiohttp|Go-http-client|"
    r"node-fetch|axios|PostmanRuntime|HTTPie|okhttp)\b",
    re.IGNORECASE,
)
UNKNOWN = "An unknown browser"


def describe_user_agent(user_agent: str | None) -> str:
    """``"Chrome on Linux"``, ``"Safari on iOS"``, ``"Program: curl"``, or
    :data:`UNKNOWN` for nothing recognisable."""
    agent = (user_agent or "").strip()
    if not agent:
        return UNKNOWN
    program = _PROGRAMS.match(agent)
    if program:
        return f"Program: {program.group(1)}"
    browser = next((name for token, name in _BROWSERS if token in agent), None)
    system = next((name for token, name in _OPERATING_SYSTEMS if token in agent), None)
    if browser is None:
        return f"A browser on {system}" if system else UNKNOWN
    return f"{browser} on {system}" if system else browser


def ago(then: datetime, now: datetime) -> str:
    """``"just now"``, ``"5 minutes ago"``, ``"2 hours ago"``, ``"yesterday"``, ``"3 days ago"``."""
    delta = now - then
    if delta < timedelta(minutes=1):
        return "just now"
    if delta < timedelta(hours=1):
        return _count(int(delta.total_seconds() // 60), "minute") + " ago"
    if delta < timedelta(days=1):
        return _count(int(delta.total_seconds() // 3600), "hour") + " ago"
    if delta < timedelta(days=2):
        return "yesterday"
    return _count(delta.days, "day") + " ago"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}{'s' if n != 1 else ''}"
