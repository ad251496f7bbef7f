"""What the auth services hand to pages, the CLI and other services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from jarvis.db.tables import User
from jarvis.identity import Principal


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """What a successful sign-in or refresh hands the client. ``refresh_token`` is shown once."""

    principal: Principal
    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True)
class ResumedSession:
    """A browser's session picked up again from its cookie (a page load)."""

    principal: Principal
    session_id: uuid.UUID
    access_token: str
    access_expires_at: datetime
    #: The user's role changed since the cookie's token was issued: give the browser a new one.
    reissue: bool


@dataclass(frozen=True, slots=True)
class BrowserCookie:
    """The browser token a redeemed ticket yields: the cookie's value (shown once)."""

    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionView:
    """One active session of a user (a browser or device), for the account page."""

    session_id: uuid.UUID
    user_agent: str
    ip: str | None
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool
    #: "Chrome on Linux" (read from the User-Agent stored at sign-in).
    device: str = ""
    #: When it was last used, in words: "2 hours ago".
    last_active: str = ""

    @property
    def summary(self) -> str:
        """``"Chrome on Linux · 2 hours ago · this device"``."""
        parts = [self.device or "An unknown browser", self.last_active]
        if self.current:
            parts.append("this device")
        return " · ".join(p for p in parts if p)


def principal_of(user: User) -> Principal:
    """The user as services see it (never the password hash)."""
    return principal_from(user.id, user.email, user.role, user.display_name)


def principal_from(user_id: uuid.UUID, email: str, role: str, display_name: str) -> Principal:
    """A principal from a user's fields (read by an authentication function, not as a row)."""
    return Principal(
        user_id=user_id,
        email=email,
        role="admin" if role == "admin" else "user",
        display_name=display_name,
    )
