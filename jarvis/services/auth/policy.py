"""Pure rules of accounts and sign-in: email and client-IP normalisation, the throttling
policy, and how waits are worded. No database, no clock (unit-tested without PostgreSQL)."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass

from jarvis.errors import AccountLockedError, ValidationError
from jarvis.validation import clean_line

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_EMAIL_CHARS = 320


def normalise_email(email: str) -> str:
    """The trimmed email, or a :class:`ValidationError` when it does not look like one (or is
    not clean text: a NUL, a control character, a lone surrogate)."""
    email = clean_line(email, field="email", label="email address", max_chars=MAX_EMAIL_CHARS)
    if not EMAIL_RE.match(email):
        raise ValidationError("Enter a valid email address.", field="email")
    return email


def check_login_name(email: str) -> str:
    """What was typed as the login name, refused only when it is not clean text (so a
    malformed name never reaches the database); any other string may be tried (and fails
    like an unknown email)."""
    return clean_line(
        email, field="email", label="email address", max_chars=MAX_EMAIL_CHARS, required=False
    )


def lockout_key(email: str) -> str:
    """The per-account throttling key of a login name (known or not): lower-cased, bounded."""
    return (email or "").strip().lower()[:MAX_EMAIL_CHARS]


def clean_ip(ip: str | None) -> str | None:
    """A canonical IP address, or None for anything that is not one."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def describe_wait(seconds: float) -> str:
    """'45 seconds', '2 minutes', '1 hour' — for "try again in ..." messages."""
    seconds = max(1, math.ceil(seconds))
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def locked_error(seconds: float) -> AccountLockedError:
    """The error a locked login name gets (it says how long, never whether the account exists)."""
    return AccountLockedError(
        f"Too many failed sign-in attempts. Try again in {describe_wait(seconds)}.",
        retry_after=float(seconds),
    )


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Sign-in throttling. Per account: after ``account_threshold`` failures in a row the
    account locks for ``lockout_base_seconds``, doubling with each further lockout up to
    ``lockout_max_seconds``; failures older than ``forget_after_seconds`` are forgotten.
    Per client IP: at most ``ip_limit`` attempts per ``ip_window_seconds``, and at most
    ``signups_per_ip`` self-service sign-ups per ``signup_window_seconds``."""

    account_threshold: int = 5
    lockout_base_seconds: int = 60
    lockout_max_seconds: int = 3600
    forget_after_seconds: int = 86400
    ip_limit: int = 30
    ip_window_seconds: int = 300
    signups_per_ip: int = 10
    signup_window_seconds: int = 3600

    def lockout_seconds(self, lockouts: int) -> int:
        """How long the ``lockouts``-th lockout in a row lasts."""
        return int(
            min(self.lockout_base_seconds * 2 ** max(lockouts - 1, 0), self.lockout_max_seconds)
        )
