"""Validation of secrets before anything is encrypted: providers, names, key formats, base
URLs. Pure (no database); no message ever quotes a value."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from jarvis.errors import ValidationError
from jarvis.validation import clean_line, is_valid_unicode

PROVIDERS: tuple[str, ...] = (
    "openai",
    "anthropic",
    "openai_compatible",
    "tavily",
    "composio",
    "custom",
)
PROVIDER_LABELS: dict[str, str] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "openai_compatible": "OpenAI-compatible (Ollama, vLLM, ...)",
    "tavily": "Tavily (web search)",
    "composio": "Composio",
    "custom": "Custom",
}


def with_article(label: str) -> str:
    """``"an OpenAI"``, ``"an Anthropic"``, ``"a Tavily (web search)"``: the article a
    provider's label takes (by its sound: all labels here start with a letter read as a
    vowel exactly when they start with one)."""
    return ("an " if label[:1].lower() in "aeiou" else "a ") + label


def secret_label(provider: str) -> str:
    """``"an OpenAI secret"``: how messages name a secret of ``provider``."""
    return with_article(PROVIDER_LABELS.get(provider, provider)) + " secret"


#: Providers whose secret carries a base URL (required / optional).
BASE_URL_REQUIRED = frozenset({"openai_compatible"})
BASE_URL_ALLOWED = frozenset({"openai_compatible", "custom"})

DEFAULT_NAME = "default"
MAX_VALUE_CHARS = 4096
MAX_NAME_CHARS = 100
MAX_BASE_URL_CHARS = 500
#: Shorter values show no "last four" (four characters of a short value say too much).
MIN_CHARS_FOR_LAST4 = 12

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_KEY_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "openai": (
        re.compile(r"^sk-(?!ant-)[A-Za-z0-9_\-]{20,}$"),
        'An OpenAI key starts with "sk-" followed by at least 20 letters, digits, "-" or "_".',
    ),
    "anthropic": (
        re.compile(r"^sk-ant-[A-Za-z0-9_\-]{20,}$"),
        'An Anthropic key starts with "sk-ant-" followed by at least 20 letters, digits, '
        '"-" or "_".',
    ),
    "tavily": (
        re.compile(r"^tvly-[A-Za-z0-9_\-]{16,}$"),
        'A Tavily key starts with "tvly-" followed by at least 16 letters, digits, "-" or "_".',
    ),
    "composio": (
        re.compile(r"^[A-Za-z0-9_\-]{8,}$"),
        'A Composio key is at least 8 letters, digits, "-" or "_" (no spaces).',
    ),
    "openai_compatible": (
        re.compile(r"^\S+$"),
        "An API key has no spaces. (For a server without keys, such as Ollama, enter any word.)",
    ),
}


def validate_provider(provider: str) -> str:
    provider = (provider or "").strip()
    if provider not in PROVIDERS:
        raise ValidationError("Choose a provider: " + ", ".join(PROVIDERS) + ".", field="provider")
    return provider


def validate_name(name: str | None) -> str:
    name = clean_line(name, field="name", max_chars=10_000, required=False) or DEFAULT_NAME
    if len(name) > MAX_NAME_CHARS:
        raise ValidationError(
            f"The name is too long (at most {MAX_NAME_CHARS} characters).", field="name"
        )
    if not _NAME_RE.match(name):
        raise ValidationError(
            'The name may contain letters, digits, spaces, ".", "-" and "_", '
            "starting with a letter or digit.",
            field="name",
        )
    return name


def validate_value(provider: str, value: str | None) -> str:
    """The trimmed value, or a :class:`ValidationError` whose message never quotes it."""
    value = (value or "").strip()
    if not value:
        raise ValidationError("Enter the secret value.", field="value")
    if len(value) > MAX_VALUE_CHARS:
        raise ValidationError(
            f"The secret value is too long (at most {MAX_VALUE_CHARS} characters).", field="value"
        )
    if _CONTROL_RE.search(value) or not is_valid_unicode(value):
        raise ValidationError(
            "The secret value contains line breaks, control characters or characters that are "
            "not valid text.",
            field="value",
        )
    fmt = _KEY_FORMATS.get(provider)
    if fmt is not None and not fmt[0].match(value):
        raise ValidationError("This does not look like a valid key. " + fmt[1], field="value")
    return value


def validate_base_url(provider: str, base_url: str | None) -> str | None:
    base_url = (
        clean_line(base_url, field="base_url", label="base URL", max_chars=10_000, required=False)
        or None
    )
    if base_url is None:
        if provider in BASE_URL_REQUIRED:
            raise ValidationError(
                "Enter the server's base URL, e.g. http://localhost:11434/v1.", field="base_url"
            )
        return None
    if provider not in BASE_URL_ALLOWED:
        raise ValidationError(
            "Only OpenAI-compatible and custom secrets take a base URL.", field="base_url"
        )
    if len(base_url) > MAX_BASE_URL_CHARS:
        raise ValidationError(
            f"The base URL is too long (at most {MAX_BASE_URL_CHARS} characters).", field="base_url"
        )
    parts = urlsplit(base_url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username
        or parts.password
    ):
        raise ValidationError(
            "The base URL must look like https://host[:port]/path (no credentials in it).",
            field="base_url",
        )
    return base_url.rstrip("/")
