"""Does an API key work? One model-list call to its provider, with a short timeout.

The Secrets page's "Test" button: ``openai`` and ``anthropic`` through their SDKs'
``models.list()``, an OpenAI-compatible server through the same SDK on the guarded HTTP client
(:mod:`jarvis.llm.outbound_http`: only addresses ``JARVIS_OUTBOUND_ALLOWLIST`` allows). The
answer is a sentence of our own — how many models the key sees, or why it failed — never the
key and never the provider's raw error text (a provider may quote what it was sent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jarvis.errors import OutboundRefusedError, ValidationError
from jarvis.llm.errors import _TIMEOUTS, _TRANSPORT
from jarvis.llm.models import ANTHROPIC, OPENAI, OPENAI_COMPATIBLE
from jarvis.llm.outbound_http import guarded_openai_client
from jarvis.security.outbound import OutboundPolicy

#: Seconds a key test waits for the provider (the button blocks the page meanwhile).
DEFAULT_CHECK_TIMEOUT_S = 8.0
#: Providers whose keys can be tested (a model list exists for them).
CHECKABLE_PROVIDERS: frozenset[str] = frozenset({OPENAI, ANTHROPIC, OPENAI_COMPATIBLE})
#: At most this many models are counted (Anthropic pages through its list).
MAX_MODELS = 1000


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """The outcome of a key test, worded for people. ``status``: the provider's HTTP status
    when it answered with an error; ``models``: how many models the key sees when it works."""

    ok: bool
    message: str
    models: int | None = None
    status: int | None = None


def _who(provider: str, base_url: str | None) -> str:
    if provider == OPENAI:
        return "OpenAI"
    if provider == ANTHROPIC:
        return "Anthropic"
    parts = urlsplit(base_url or "")
    host = parts.hostname or "its base URL"
    # Host and port only: a URL's user-info could hold credentials.
    place = f"{host}:{parts.port}" if parts.port else host
    return f"the OpenAI-compatible server at {place}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(n: int) -> str:
    return f"{n} model{'s' if n != 1 else ''}"


class KeyChecker:
    """``check(provider, api_key, base_url) -> KeyCheck``: one model-list call.

    ``base_urls`` overrides the OpenAI / Anthropic endpoints (tests point them at a local
    server speaking their wire formats)."""

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_CHECK_TIMEOUT_S,
        outbound: OutboundPolicy | None = None,
        base_urls: dict[str, str] | None = None,
    ) -> None:
        self._timeout = timeout
        self._outbound = outbound or OutboundPolicy()
        self._base_urls = dict(base_urls or {})

    @property
    def timeout(self) -> float:
        return self._timeout

    def check(self, provider: str, api_key: str, base_url: str | None = None) -> KeyCheck:
        """Ask ``provider`` for its model list with ``api_key``; never raises for what the
        provider answers (only :class:`ValidationError` for a provider without a model list)."""
        if provider not in CHECKABLE_PROVIDERS:
            raise ValidationError("Keys of this provider cannot be tested.", field="provider")
        # The SDKs take seconds to import: only when a key is tested, not with this module.
        import anthropic
        import openai

        timed_out: tuple[type[BaseException], ...] = (
            openai.APITimeoutError,
            anthropic.APITimeoutError,
            *_TIMEOUTS,
        )
        unreachable: tuple[type[BaseException], ...] = (
            openai.APIConnectionError,
            anthropic.APIConnectionError,
            *_TRANSPORT,
        )
        who = _who(provider, base_url)
        try:
            if provider == OPENAI_COMPATIBLE and base_url:
                self._outbound.check_url(base_url)
            count = self._count_models(provider, api_key, base_url)
        except OutboundRefusedError:
            return KeyCheck(
                False,
                f"Could not reach {who}: this server may not connect to that address "
                "(JARVIS_OUTBOUND_ALLOWLIST).",
            )
        except timed_out:
            return KeyCheck(False, f"Could not reach {who}: no answer within {self._timeout:g} s.")
        except unreachable:
            return KeyCheck(False, f"Could not reach {who}: the connection failed.")
        except (openai.APIStatusError, anthropic.APIStatusError) as exc:
            return _refused(who, exc.status_code)
        except (openai.OpenAIError, anthropic.AnthropicError):
            # A body that is not a model list (a proxy's page), or a client set-up error.
            return KeyCheck(False, f"{_capital(who)} answered, but not with a model list.")
        return KeyCheck(True, f"Works — {_plural(count)} available.", models=count)

    def _count_models(self, provider: str, api_key: str, base_url: str | None) -> int:
        counted = 0
        for _model in self._models(provider, api_key, base_url):
            counted += 1
            if counted >= MAX_MODELS:
                break
        return counted

    def _models(self, provider: str, api_key: str, base_url: str | None) -> Any:
        import anthropic
        import openai

        from jarvis.llm.openai_provider import OPENAI_BASE_URL, PLACEHOLDER_KEY

        if provider == ANTHROPIC:
            client: Any = anthropic.Anthropic(
                api_key=api_key,
                base_url=self._base_urls.get(ANTHROPIC),
                timeout=self._timeout,
                max_retries=0,
            )
            return client.models.list(limit=MAX_MODELS)
        guarded = provider == OPENAI_COMPATIBLE
        client = openai.OpenAI(
            api_key=api_key or PLACEHOLDER_KEY,
            base_url=(base_url if guarded else self._base_urls.get(OPENAI)) or OPENAI_BASE_URL,
            timeout=self._timeout,
            max_retries=0,
            http_client=guarded_openai_client(self._outbound) if guarded else None,
        )
        return client.models.list()


_StatusWords = dict[int, Callable[[str], str]]
_STATUS_WORDS: _StatusWords = {
    401: lambda who: f"Rejected by {who}: the key is not valid (401).",
    402: lambda who: f"Rejected by {who}: payment is required on that account (402).",
    403: lambda who: f"Rejected by {who}: the key may not list models (403).",
    404: lambda who: (
        f"{_capital(who)} has no model list at that address (404): check the base URL."
    ),
    429: lambda who: f"{_capital(who)} is rate-limiting this key (429): try again in a minute.",
}


def _refused(who: str, status: int) -> KeyCheck:
    words = _STATUS_WORDS.get(status)
    if words is not None:
        message = words(who)
    elif status >= 500:
        message = f"{_capital(who)} had a server error ({status}): try again later."
    else:
        message = f"Rejected by {who} ({status})."
    return KeyCheck(False, message, status=status)
