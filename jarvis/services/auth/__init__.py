"""Accounts, sign-in and sessions. Users and sessions live in PostgreSQL only.

=================  ===========================  ==============================================
module             service (``Services`` field)  what
=================  ===========================  ==============================================
``accounts``       ``AccountService``           registration (first user is admin), sign-up
                   (``accounts``)               switch, password change, principal lookups,
                                                user listing for the CLI
``sign_in``        ``SignInService``            ``login`` (one call: credential check + new
                   (``sign_in``)                session), throttling per IP, lockout per account
``sessions``       ``SessionService``           open, refresh rotation with reuse detection,
                   (``sessions``)               browser tickets and cookie tokens, check,
                                                logout, list / revoke, sign out everywhere,
                                                access tokens
``lockouts``       ``AccountLockouts``          failures in a row per login name (used by
                                                sign-in and the password change)
``policy``         (pure)                       ``LoginPolicy``, email / IP normalisation, waits
``views``          (dataclasses)                ``IssuedSession``, ``SessionView``,
                                                ``ResumedSession``, ``BrowserCookie``
=================  ===========================  ==============================================
"""

from __future__ import annotations

from jarvis.services.auth.accounts import SIGNUP_OPEN_KEY, AccountService
from jarvis.services.auth.lockouts import AccountLockouts
from jarvis.services.auth.policy import LoginPolicy, describe_wait, normalise_email
from jarvis.services.auth.sessions import BROWSER_TICKET_TTL, TOUCH_EVERY, SessionService
from jarvis.services.auth.sign_in import SignInService
from jarvis.services.auth.views import (
    BrowserCookie,
    IssuedSession,
    ResumedSession,
    SessionView,
    principal_of,
)

__all__ = [
    "BROWSER_TICKET_TTL",
    "SIGNUP_OPEN_KEY",
    "TOUCH_EVERY",
    "AccountLockouts",
    "AccountService",
    "BrowserCookie",
    "IssuedSession",
    "LoginPolicy",
    "ResumedSession",
    "SessionService",
    "SessionView",
    "SignInService",
    "describe_wait",
    "normalise_email",
    "principal_of",
]
