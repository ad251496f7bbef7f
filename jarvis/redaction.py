"""Masks secrets and personal data in text headed for logs and span attributes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JWTs: three base64url segments, the first two starting like a JSON object ("ey").
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
        "[REDACTED_JWT]",
    ),
    # Jarvis refresh tokens on their own (secrets.token_urlsafe(32)): 43 base64url characters,
    # the last one holding 4 bits, so one of 16 (a cookie value, a token pasted anywhere).
    (
        re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048](?![A-Za-z0-9_-])"),
        "[REDACTED_TOKEN]",
    ),
    # Provider API keys: OpenAI sk-..., sk-proj-..., Anthropic sk-ant-..., Tavily tvly-...
    (re.compile(r"\b(?:sk-ant-|sk-proj-|sk-|tvly-|ak_|pk_)[A-Za-z0-9_\-]{8,}"), "[REDACTED_KEY]"),
    # Bearer tokens in headers.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*"), r"\1 [REDACTED]"),
    # key=value style secrets.
    (
        re.compile(
            r"(?i)\b(password|passwd|secret|api[_-]?key|token|authorization)(\s*[=:]\s*)([^\s,;&]+)"
        ),
        r"\1\2[REDACTED]",
    ),
    # Email addresses.
    (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), "[REDACTED_EMAIL]"),
    # Card numbers: 13-19 digits with optional spaces / dashes.
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[REDACTED_CARD]"),
    # Phone numbers: +country and 8+ digits with separators.
    (
        re.compile(r"(?<![\w.])\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}\b"),
        "[REDACTED_PHONE]",
    ),
)


def redact(text: str) -> str:
    """Return ``text`` with API keys, JWTs, refresh and bearer tokens, emails, card and phone
    numbers masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside nested dicts / lists / tuples (log ``extra`` fields, attributes)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value
