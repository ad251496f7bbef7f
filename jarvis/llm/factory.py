"""Builds the provider adapter a user's turn runs on, with the key from the user's vault.

The key is decrypted (``SecretsService.reveal``, audited) each time an adapter is built — once
per run — and lives only in that adapter, which the run drops when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jarvis.errors import (
    NotFoundError,
    OutboundRefusedError,
    ProviderAuthError,
    ProviderBadRequestError,
    ValidationError,
)
from jarvis.identity import Principal
from jarvis.llm.base import LLMProvider
from jarvis.llm.errors import RetryPolicy
from jarvis.llm.models import (
    ANTHROPIC,
    CHAT_PROVIDERS,
    DEFAULT_MODELS,
    OPENAI,
    OPENAI_COMPATIBLE,
    provider_label,
)
from jarvis.llm.offline import OFFLINE, OfflineProvider
from jarvis.security.outbound import OutboundPolicy

DEFAULT_TIMEOUT_S = 60.0


class SecretSource(Protocol):
    """What the factory needs from :class:`jarvis.services.secrets.SecretsService`."""

    def reveal(self, principal: Principal, provider: str, name: str | None = None) -> Any:
        """``RevealedSecret(value, base_url)``; ``NotFoundError`` when the user has none."""
        ...

    def providers_available(self, principal: Principal) -> set[str]: ...


@dataclass(frozen=True, slots=True)
class ProviderChoice:
    """One entry of the chat page's provider picker."""

    id: str
    label: str
    models: tuple[str, ...]
    default_model: str
    needs_key: bool


#: ``builder(api_key, base_url, retry, timeout) -> LLMProvider``.
Builder = Callable[[str | None, str | None, RetryPolicy, float], LLMProvider]


class ProviderFactory:
    """``for_user(principal, provider)`` -> a ready :class:`LLMProvider`;
    ``usable_providers(principal)`` -> what the picker may offer (offline always)."""

    def __init__(
        self,
        secrets: SecretSource | None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        builders: dict[str, Builder] | None = None,
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self._secrets = secrets
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        # A user's base URL is checked before each run and at each connection (SSRF guard).
        self._outbound = outbound or OutboundPolicy()
        self._builders: dict[str, Builder] = {
            OPENAI: self._openai,
            OPENAI_COMPATIBLE: self._openai_compatible,
            ANTHROPIC: self._anthropic,
            **(builders or {}),
        }

    # Each adapter's module imports its SDK (seconds): only when a run first needs it.

    def _openai(
        self, key: str | None, url: str | None, retry: RetryPolicy, timeout: float
    ) -> LLMProvider:
        from jarvis.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(key, name=OPENAI, base_url=url, timeout=timeout, retry=retry)

    def _openai_compatible(
        self, key: str | None, url: str | None, retry: RetryPolicy, timeout: float
    ) -> LLMProvider:
        from jarvis.llm.openai_provider import OpenAIProvider
        from jarvis.llm.outbound_http import guarded_openai_client

        return OpenAIProvider(
            key,
            name=OPENAI_COMPATIBLE,
            base_url=url,
            timeout=timeout,
            retry=retry,
            http_client=guarded_openai_client(self._outbound),
        )

    def _anthropic(
        self, key: str | None, url: str | None, retry: RetryPolicy, timeout: float
    ) -> LLMProvider:
        from jarvis.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(key, base_url=url, timeout=timeout, retry=retry)

    def for_user(
        self,
        principal: Principal,
        provider: str,
        secrets_service: SecretSource | None = None,
        *,
        deadline: float | None = None,
    ) -> LLMProvider:
        """The adapter for ``provider`` with the user's key (``offline`` needs none). With a
        ``deadline`` (``time.monotonic()``), no read waits and no retry starts past it.

        Raises :class:`ValidationError` for an unknown provider,
        :class:`ProviderAuthError` when the user has no key for it and
        :class:`ProviderBadRequestError` when its base URL points where the server may not
        connect (``JARVIS_OUTBOUND_ALLOWLIST``).
        """
        if provider == OFFLINE:
            return OfflineProvider()
        builder = self._builders.get(provider)
        if builder is None:
            raise ValidationError(f"Unknown provider: {provider[:50]!r}.", field="provider")
        secrets = secrets_service or self._secrets
        if secrets is None:
            raise ProviderAuthError(
                f"No secrets vault is configured, so {provider_label(provider)} cannot be used.",
                provider=provider,
            )
        try:
            revealed = secrets.reveal(principal, provider)
        except NotFoundError as exc:
            raise ProviderAuthError(
                f"You have no {provider_label(provider)} API key. Add one on the Secrets page, "
                "or use the offline model.",
                provider=provider,
            ) from exc
        base_url = getattr(revealed, "base_url", None) or None
        if provider == OPENAI_COMPATIBLE and not base_url:
            raise ProviderAuthError(
                "Your OpenAI-compatible secret has no base URL (e.g. http://localhost:11434/v1).",
                provider=provider,
            )
        if base_url:
            try:
                self._outbound.check_url(base_url)
            except OutboundRefusedError as exc:
                raise ProviderBadRequestError(
                    f"The base URL of your {provider_label(provider)} key cannot be used: "
                    + str(exc),
                    provider=provider,
                ) from exc
        timeout = self._timeout
        if deadline is not None:
            timeout = max(1.0, min(timeout, deadline - time.monotonic()))
        return builder(
            getattr(revealed, "value", None) or None,
            base_url,
            self._retry.until(deadline),
            timeout,
        )

    def usable_providers(self, principal: Principal) -> list[ProviderChoice]:
        """Offline always; every other chat provider the user holds a key for."""
        have: set[str] = set()
        if self._secrets is not None:
            have = set(self._secrets.providers_available(principal))
        return [
            ProviderChoice(
                id=provider,
                label=provider_label(provider),
                models=DEFAULT_MODELS[provider],
                default_model=DEFAULT_MODELS[provider][0],
                needs_key=provider != OFFLINE,
            )
            for provider in CHAT_PROVIDERS
            if provider == OFFLINE or provider in have
        ]
