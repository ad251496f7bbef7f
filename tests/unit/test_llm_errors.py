"""SDK error translation covers what the ``openai`` and ``anthropic`` SDKs raise, never
leaks the key, and the retry policy backs off exponentially with jitter."""

from __future__ import annotations

import inspect
import random

import anthropic
import httpx2
import openai
import pytest

from jarvis.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    ProviderTimeoutError,
)
from jarvis.llm.errors import RetryPolicy, give_up, translate_error

KEY = "sk-proj-SECRETSECRETSECRET123456"
REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")


def expected_for_status(status: int) -> type[ProviderError]:
    if status in (401, 402, 403):
        return ProviderAuthError
    if status == 429:
        return ProviderRateLimitError
    if status == 408:
        return ProviderTimeoutError
    if status >= 500:
        return ProviderServerError
    return ProviderBadRequestError


SDK_CLIENTS = [
    ("openai", lambda: openai.OpenAI(api_key=KEY, base_url="http://127.0.0.1/v1", max_retries=0)),
    (
        "anthropic",
        lambda: anthropic.Anthropic(api_key=KEY, base_url="http://127.0.0.1", max_retries=0),
    ),
]


@pytest.mark.parametrize(("provider", "make_client"), SDK_CLIENTS)
@pytest.mark.parametrize(
    "status",
    [400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 431, 499, 500, 501, 502, 503, 504, 529],
)
def test_every_status_error_the_sdk_raises_is_mapped(provider, make_client, status) -> None:
    client = make_client()
    body = {"error": {"type": "x", "message": f"something about {KEY}"}}
    response = httpx2.Response(status, request=REQUEST, json=body)
    sdk_error = client._make_status_error(
        f"Error code: {status} - {body}", body=body, response=response
    )

    err = translate_error(sdk_error, provider, secret=KEY)

    assert type(err) is expected_for_status(status)
    assert err.provider == provider
    assert KEY not in str(err)
    assert KEY[:12] not in str(err)


def _sdk_exception_classes(module) -> list[type[BaseException]]:
    base = module.OpenAIError if module is openai else module.AnthropicError
    classes = {
        obj
        for source in (module, module._exceptions)
        for obj in list(vars(source).values())
        if inspect.isclass(obj) and issubclass(obj, base)
    }
    return sorted(classes, key=lambda c: c.__name__)


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of an SDK exception class, built the way the SDK builds it where possible."""
    try:
        return _construct(cls)
    except TypeError:  # a subclass with its own constructor (e.g. OAuthError)
        err = cls.__new__(cls)
        Exception.__init__(err, "boom")
        err.body = None  # type: ignore[attr-defined]
        err.message = "boom"  # type: ignore[attr-defined]
        return err


def _construct(cls: type[BaseException]) -> BaseException:
    status = getattr(cls, "status_code", None)
    if issubclass(cls, openai.APIStatusError | anthropic.APIStatusError):
        code = status if isinstance(status, int) else 500
        return cls("boom", response=httpx2.Response(code, request=REQUEST), body=None)
    if issubclass(cls, openai.APIResponseValidationError | anthropic.APIResponseValidationError):
        return cls(httpx2.Response(200, request=REQUEST), None)
    if issubclass(cls, openai.APITimeoutError | anthropic.APITimeoutError):
        return cls(REQUEST)
    if issubclass(cls, openai.APIConnectionError | anthropic.APIConnectionError):
        return cls(request=REQUEST)
    if issubclass(cls, openai.APIError | anthropic.APIError):
        return cls("boom", REQUEST, body=None)
    err = cls.__new__(cls)
    Exception.__init__(err, "boom")
    return err


# Exceptions of SDK features Jarvis does not use (webhooks, realtime websockets, its own
# retry signal): they cannot come out of a chat stream, so a generic ProviderError is fine.
NOT_RAISED_BY_CHAT = {
    "InvalidWebhookSignatureError",
    "APIWebhookValidationError",
    "WebSocketConnectionClosedError",
    "WebSocketQueueFullError",
    "RetryableError",
}


@pytest.mark.slow  # imports every module of each SDK (seconds)
@pytest.mark.parametrize("module", [openai, anthropic], ids=["openai", "anthropic"])
def test_mapping_covers_every_exception_class_of_the_sdk(module) -> None:
    unmapped = []
    for cls in _sdk_exception_classes(module):
        if cls.__name__ in NOT_RAISED_BY_CHAT:
            continue
        err = translate_error(_instance(cls), module.__name__)
        if type(err) is ProviderError:
            unmapped.append(cls.__name__)
    assert unmapped == []


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (openai.APITimeoutError(REQUEST), ProviderTimeoutError),
        (anthropic.APITimeoutError(REQUEST), ProviderTimeoutError),
        (openai.APIConnectionError(request=REQUEST), ProviderServerError),
        (anthropic.APIConnectionError(request=REQUEST), ProviderServerError),
        (httpx2.ReadTimeout("read timed out", request=REQUEST), ProviderTimeoutError),
        (httpx2.RemoteProtocolError("peer closed", request=REQUEST), ProviderServerError),
        (
            openai.APIError("stream error", REQUEST, body={"message": "overloaded"}),
            ProviderServerError,
        ),
        (anthropic.CredentialsError("no key"), ProviderAuthError),
    ],
)
def test_transport_and_stream_errors(exc, expected) -> None:
    assert type(translate_error(exc, "openai")) is expected


def test_unknown_exception_is_a_generic_provider_error_naming_only_its_class() -> None:
    err = translate_error(RuntimeError(f"weird {KEY}"), "anthropic", secret=KEY)

    assert type(err) is ProviderError
    assert "RuntimeError" in str(err)
    assert KEY not in str(err)


def test_retry_policy_only_retries_transient_errors() -> None:
    policy = RetryPolicy(attempts=3)

    assert policy.should_retry(ProviderRateLimitError(), 1)
    assert policy.should_retry(ProviderServerError(), 2)
    assert policy.should_retry(ProviderTimeoutError(), 1)
    assert not policy.should_retry(ProviderServerError(), 3)  # the last attempt
    assert not policy.should_retry(ProviderAuthError(), 1)
    assert not policy.should_retry(ProviderBadRequestError(), 1)


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    policy = RetryPolicy(attempts=10, base_delay=1.0, max_delay=5.0, rng=random.Random(1))

    delays = [policy.delay(n) for n in range(1, 7)]

    for n, delay in enumerate(delays, start=1):
        backoff = min(5.0, 2 ** (n - 1))
        assert backoff * 0.5 <= delay <= backoff
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not constant
    assert max(delays) <= 5.0


def test_give_up_message_counts_attempts_and_keeps_the_class() -> None:
    final = give_up(
        ProviderServerError("OpenAI had a server error (HTTP 502).", provider="openai"), 3
    )

    assert type(final) is ProviderServerError
    assert final.provider == "openai"
    assert str(final).startswith("OpenAI had a server error (HTTP 502) — gave up after 3 attempts")
