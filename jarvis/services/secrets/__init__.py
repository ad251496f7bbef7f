"""Users' provider API keys: write-only, envelope-encrypted, audited.

Values go in through :meth:`SecretsService.create` / :meth:`~SecretsService.update` and come out
only through :meth:`SecretsService.reveal` (for the orchestrator and tools; audited as
``secret.used``). Listings return :class:`SecretView`, which has no value field. Nothing here logs,
traces, audits or raises with a value in it.

``validation`` (pure: providers, names, key formats, base URLs), ``views`` (what is handed
out), ``service`` (the :class:`SecretsService`); master-key rotation is
:mod:`jarvis.services.key_rotation`.
"""

from __future__ import annotations

from jarvis.llm.key_check import KeyCheck
from jarvis.services.secrets.service import SecretsService, sealed_of
from jarvis.services.secrets.validation import (
    BASE_URL_ALLOWED,
    BASE_URL_REQUIRED,
    DEFAULT_NAME,
    MAX_BASE_URL_CHARS,
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    MIN_CHARS_FOR_LAST4,
    PROVIDER_LABELS,
    PROVIDERS,
    secret_label,
    validate_base_url,
    validate_name,
    validate_provider,
    validate_value,
    with_article,
)
from jarvis.services.secrets.views import RevealedSecret, SecretView

__all__ = [
    "BASE_URL_ALLOWED",
    "BASE_URL_REQUIRED",
    "DEFAULT_NAME",
    "KeyCheck",
    "MAX_BASE_URL_CHARS",
    "MAX_NAME_CHARS",
    "MAX_VALUE_CHARS",
    "MIN_CHARS_FOR_LAST4",
    "PROVIDERS",
    "PROVIDER_LABELS",
    "RevealedSecret",
    "SecretView",
    "SecretsService",
    "sealed_of",
    "secret_label",
    "validate_base_url",
    "validate_name",
    "validate_provider",
    "validate_value",
    "with_article",
]
