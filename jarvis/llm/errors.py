"""Translation of ``openai`` / ``anthropic`` SDK errors into :mod:`jarvis.errors`, and the
one retry policy for transient provider failures.

The SDKs share a hierarchy (``APIError`` -> ``APIStatusError`` (4xx/5xx) /
``APIConnectionError`` -> ``APITimeoutError``); the status code decides for status errors, so
a new SDK subclass of a known status is still mapped right. Messages are our own wording plus
the provider's short explanation for bad requests, redacted, never the API key.

The SDKs are not imported here: an exception can only come from an SDK that is loaded, so the
classes are looked up among the loaded ones. Together the SDKs take seconds to import, and a
command that never calls a provider (``jarvis users add``) should not wait for them.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx

from jarvis.errors import (
    OutboundRefusedError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from jarvis.redaction import redact


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout classes, other transport classes) of httpx and of httpx2, which the current
    SDKs are built on (an SDK wraps most of them, not those raised while a stream is read)."""
    timeouts: list[type[BaseException]] = [httpx.TimeoutException]
    transport: list[type[BaseException]] = [httpx.TransportError]
    try:
        import httpx2
    except ImportError:  # an SDK version still on httpx
        pass
    else:
        timeouts.append(httpx2.TimeoutException)
        transport.append(httpx2.TransportError)
    return tuple(timeouts), tuple(transport)


_TIMEOUTS, _TRANSPORT = _transport_errors()

RETRYABLE: tuple[type[ProviderError], ...] = (
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)

_LABELS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "openai_compatible": "The OpenAI-compatible server",
}

_MAX_DETAIL = 300
# SDK errors about loading credentials that are not exported at the package top level.
_CREDENTIAL_ERRORS = frozenset(
    {"SubjectTokenProviderError", "WorkloadIdentityError", "MutuallyExclusiveAuthError"}
)


def provider_label(provider: str) -> str:
    return _LABELS.get(provider, provider)


def _scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[REDACTED_KEY]")
    text = redact(text)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _detail(exc: BaseException) -> str:
    """The provider's own short explanation (``error.message`` of the body) if there is one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else ""


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


#: The SDK packages whose exceptions :func:`translate_error` maps.
_SDKS = ("openai", "anthropic")


def _sdk(*names: str) -> tuple[type[BaseException], ...]:
    """The exception classes called ``names`` in the SDKs imported so far (an exception can
    only come from a loaded SDK; importing one here would cost seconds)."""
    loaded = [m for m in (sys.modules.get(sdk) for sdk in _SDKS) if m is not None]
    return tuple(cls for m in loaded for name in names if (cls := getattr(m, name, None)))


def translate_error(
    exc: BaseException, provider: str, *, secret: str | None = None
) -> ProviderError:
    """Map an SDK / transport exception to the matching ``ProviderError`` (raise it ``from exc``).

    ``secret`` (the API key used) is scrubbed from any text taken from the exception.
    """
    who = provider_label(provider)
    err: ProviderError
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, OutboundRefusedError):  # the guarded transport refused the address
        return ProviderBadRequestError(f"{who} cannot be used: {exc}", provider=provider)
    if isinstance(exc, (*_sdk("APITimeoutError"), *_TIMEOUTS)):
        err = ProviderTimeoutError(f"{who} did not answer in time.", provider=provider)
    elif isinstance(exc, (*_sdk("APIConnectionError"), *_TRANSPORT)):
        err = ProviderServerError(f"{who} could not be reached.", provider=provider)
    elif isinstance(exc, _sdk("APIStatusError")):
        err = _from_status(int(getattr(exc, "status_code", 500)), exc, provider, secret)
    elif isinstance(exc, _sdk("APIResponseValidationError")):
        err = ProviderServerError(
            f"{who} sent a response Jarvis could not read.", provider=provider
        )
    elif isinstance(exc, _sdk("APIError")):
        # An error event inside an otherwise successful stream (overloaded, internal error).
        detail = _scrub(_detail(exc), secret)
        err = ProviderServerError(
            f"{who} reported an error while answering" + (f": {detail}" if detail else "."),
            provider=provider,
        )
    elif isinstance(exc, _sdk("CredentialsError")) or type(exc).__name__ in _CREDENTIAL_ERRORS:
        err = ProviderAuthError(f"{who} credentials could not be loaded.", provider=provider)
    elif isinstance(exc, _sdk("LengthFinishReasonError", "ContentFilterFinishReasonError")):
        err = ProviderBadRequestError(
            f"{who} stopped the answer: {_scrub(str(exc), secret)}", provider=provider
        )
    elif isinstance(exc, _sdk("OpenAIError", "AnthropicError")):
        # Raised by the SDK before sending (client set-up, bad arguments): not transient.
        err = ProviderBadRequestError(
            f"{who}: the request could not be made ({type(exc).__name__}).", provider=provider
        )
    else:
        err = ProviderError(f"{who} failed: {type(exc).__name__}.", provider=provider)
    return err


# ``error.type`` of an error event sent inside a 200 stream -> the status it stands for.
_STREAM_ERROR_TYPES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _error_type(exc: BaseException) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def _from_status(
    status: int, exc: BaseException, provider: str, secret: str | None
) -> ProviderError:
    who = provider_label(provider)
    detail = _scrub(_detail(exc), secret)
    suffix = f" ({detail})" if detail else ""
    if status < 400:
        # An error event inside a stream that started fine: its type says what happened.
        status = _STREAM_ERROR_TYPES.get(_error_type(exc) or "", 500)
        if status >= 500:
            return ProviderServerError(
                f"{who} reported an error while answering{suffix}.", provider=provider
            )
    if status in (401, 403):
        return ProviderAuthError(
            f"{who} rejected the API key (HTTP {status}). Check the key in Secrets.",
            provider=provider,
        )
    if status == 402:
        return ProviderAuthError(
            f"{who} refused the request: payment required (HTTP 402). Check your account.",
            provider=provider,
        )
    if status == 429:
        err = ProviderRateLimitError(
            f"{who} is rate limiting requests (HTTP 429).", provider=provider
        )
        err.retry_after = _retry_after(exc)  # type: ignore[attr-defined]
        return err
    if status == 408:
        return ProviderTimeoutError(f"{who} timed out the request (HTTP 408).", provider=provider)
    if status >= 500:
        return ProviderServerError(f"{who} had a server error (HTTP {status}).", provider=provider)
    return ProviderBadRequestError(
        f"{who} rejected the request (HTTP {status}){suffix}.", provider=provider
    )


# -- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for 429 / 5xx / timeouts.

    ``attempts`` counts every try (3 = one call and two retries). Delay of retry ``n`` (from 1)
    is ``uniform(0.5, 1.0) * min(max_delay, base_delay * 2 ** (n - 1))``, raised to the
    server's ``Retry-After`` when it sent one (capped at ``max_delay``).

    With a ``deadline`` (``time.monotonic()`` by which the whole run must end), the server's
    ``Retry-After`` is honoured in full as long as the wait ends before the deadline, and no
    retry is made that could not start before it.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    deadline: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def until(self, deadline: float | None) -> RetryPolicy:
        """This policy, bounded by a run's deadline."""
        return replace(self, deadline=deadline)

    def should_retry(self, err: ProviderError, attempt: int) -> bool:
        """``attempt`` is the number of the try that just failed (from 1)."""
        if not isinstance(err, RETRYABLE) or attempt >= self.attempts:
            return False
        if self.deadline is None:
            return True
        return time.monotonic() + self.delay(attempt, err, jitter=False) < self.deadline

    def delay(
        self, attempt: int, err: ProviderError | None = None, *, jitter: bool = True
    ) -> float:
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        delay = backoff * (0.5 + 0.5 * self.rng.random()) if jitter else backoff * 0.5
        hint: object = getattr(err, "retry_after", None)
        if isinstance(hint, int | float) and hint > delay:
            cap = self.max_delay if self.deadline is None else float("inf")
            delay = min(float(hint), cap)
        return delay


def give_up(err: ProviderError, attempts: int) -> ProviderError:
    """The final error after retries: same class, message says how often we tried."""
    if attempts <= 1 or not isinstance(err, RETRYABLE):
        return err
    final = type(err)(
        f"{err.message.rstrip('.')} — gave up after {attempts} attempts. Please try again later.",
        provider=err.provider,
    )
    return final
