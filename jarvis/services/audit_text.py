"""The audit log in words: action names, targets and details as an administrator reads them.

``login.success`` reads "Signed in"; ``{"provider": "openai", "works": false}`` reads
"provider: openai · works: no"; ``session:9f1c…`` reads "session 9f1c2a3b". Pure (no database);
the raw action stays available for filtering and export.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from jarvis.services.auth.devices import describe_user_agent

ACTION_LABELS: dict[str, str] = {
    "login.success": "Signed in",
    "login.failure": "Sign-in failed",
    "login.lockout": "Account locked after failed sign-ins",
    "login.throttled": "Sign-in attempts throttled",
    "logout": "Signed out",
    "session.started": "Session started",
    "session.revoked": "Session signed out from the Account page",
    "session.refresh_reuse": "Reused refresh token: session ended",
    "sessions.revoked_all": "Signed out everywhere",
    "sessions.revoked_others": "Signed out all other sessions",
    "password.changed": "Password changed",
    "password.change_failed": "Password change failed",
    "user.registered": "Account created",
    "user.activated": "Account activated",
    "user.deactivated": "Account deactivated",
    "user.password_reset": "Password reset by an administrator",
    "user.role_changed": "Role changed",
    "user.timezone_set": "Time zone set",
    "settings.signup_changed": "Sign-up switched",
    "secret.created": "Secret added",
    "secret.updated": "Secret replaced",
    "secret.deleted": "Secret deleted",
    "secret.used": "Secret used",
    "secret.tested": "Secret tested",
    "secret.decrypt_failed": "Secret could not be decrypted",
    "secret.key_rotated": "Secret re-wrapped (master key rotation)",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "budget.default_set": "Default budget set",
    "budget.user_set": "User budget set",
    "price.added": "Price version added",
    "tool.called": "Tool called",
    "tool.denied": "Tool call denied",
    "tool_permission.granted": "Tool allowed",
    "tool_permission.denied": "Tool denied",
    "tool_permission.reset": "Tool permission reset",
}

#: Detail keys worded for people ("user_agent" -> "browser").
_KEY_LABELS: dict[str, str] = {"user_agent": "browser", "usd": "USD"}
_MAX_VALUE = 200


def action_label(action: str) -> str:
    """``"Signed in"`` for ``login.success``; an unknown action reads as itself, tidied."""
    return ACTION_LABELS.get(action) or action.replace("_", " ").replace(".", ": ", 1).capitalize()


def target_text(target: str | None) -> str:
    """``"session 9f1c2a3b"`` for ``session:<uuid>``; other targets unchanged."""
    if not target:
        return ""
    kind, sep, ident = target.partition(":")
    if not sep:
        return target
    try:
        short = uuid.UUID(ident).hex[:8]
    except ValueError:
        return f"{kind.replace('_', ' ')} {ident}"
    return f"{kind.replace('_', ' ')} {short}"


def _value(key: str, value: object) -> str:
    if key == "user_agent" and isinstance(value, str):
        return describe_user_agent(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "—"
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = f"{value:,}" if isinstance(value, int) else f"{value:g}"
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}: {_value(str(k), v)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = ", ".join(_value(key, v) for v in value)
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def details_lines(details: Mapping[str, object] | None) -> list[str]:
    """One ``"key: value"`` line per detail, keys in a stable order, empty values left out."""
    lines = []
    for key in sorted(details or {}):
        value = (details or {})[key]
        if value in ("", None):
            continue
        label = _KEY_LABELS.get(key, key.replace("_", " "))
        lines.append(f"{label}: {_value(key, value)}")
    return lines


def details_text(details: Mapping[str, object] | None) -> str:
    """The details on one line: ``"provider: openai · works: no"``."""
    return " · ".join(details_lines(details))
