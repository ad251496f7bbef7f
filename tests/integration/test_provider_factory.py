"""ProviderFactory against the real secrets vault (PostgreSQL, encryption, RLS): the key a
user saved is the one the SDK sends; offline needs none; the picker lists usable providers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jarvis.bootstrap import Services
from jarvis.errors import (
    OutboundRefusedError,
    ProviderAuthError,
    ProviderBadRequestError,
    ValidationError,
)
from jarvis.llm.anthropic_provider import AnthropicProvider
from jarvis.llm.base import ChatMessage, TextDelta
from jarvis.llm.factory import ProviderFactory
from jarvis.llm.offline import OFFLINE_LABEL, OfflineProvider
from jarvis.llm.openai_provider import OpenAIProvider
from jarvis.security.outbound import OutboundPolicy
from jarvis.services.secrets import SecretsService
from tests import factories
from tests.llm_wire_server import Reply, WireServer, fast_retry, openai_text_stream, openai_usage

OPENAI_KEY = "sk-proj-vaultkeyABCDEFGHIJKLMNOP123"
LOCAL_KEY = "ollama-local-key-123"


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as wire:
        yield wire


def test_offline_is_always_usable_and_needs_no_key(services: Services) -> None:
    principal = factories.user(services.uow, "llm")
    factory = ProviderFactory(services.secrets)

    choices = factory.usable_providers(principal)

    assert [c.id for c in choices] == ["offline"]
    assert choices[0].label == OFFLINE_LABEL
    assert choices[0].needs_key is False
    assert isinstance(factory.for_user(principal, "offline"), OfflineProvider)


def test_missing_key_is_a_clear_provider_auth_error(services: Services) -> None:
    principal = factories.user(services.uow, "llm")

    with pytest.raises(ProviderAuthError, match="no OpenAI API key.*Secrets page"):
        ProviderFactory(services.secrets).for_user(principal, "openai")


def test_unknown_provider_is_refused(services: Services) -> None:
    with pytest.raises(ValidationError):
        ProviderFactory(services.secrets).for_user(factories.user(services.uow, "llm"), "tavily")


def test_saved_keys_make_providers_usable(services: Services) -> None:
    principal = factories.user(services.uow, "llm")
    services.secrets.create(principal, "openai", None, OPENAI_KEY)
    services.secrets.create(principal, "anthropic", None, "sk-ant-api03-" + "k" * 30)
    factory = ProviderFactory(services.secrets)

    ids = [c.id for c in factory.usable_providers(principal)]

    assert ids == ["offline", "openai", "anthropic"]
    assert isinstance(factory.for_user(principal, "openai"), OpenAIProvider)
    assert isinstance(factory.for_user(principal, "anthropic"), AnthropicProvider)
    other = factories.user(services.uow, "llm")
    assert [c.id for c in factory.usable_providers(other)] == ["offline"]  # keys are per user


def test_vault_key_and_base_url_reach_the_wire(services: Services, server: WireServer) -> None:
    principal = factories.user(services.uow, "llm")
    services.secrets.create(
        principal, "openai_compatible", "ollama", LOCAL_KEY, base_url=server.url + "/v1"
    )
    server.script(Reply.sse(openai_text_stream(["from ", "ollama"], usage=openai_usage(5, 2))))
    policy, _ = fast_retry()
    # The test settings allow-list loopback (tests/conftest.py), as an admin would for Ollama
    allowed = OutboundPolicy(services.settings.outbound_allowlist)
    factory = ProviderFactory(services.secrets, retry=policy, timeout=5, outbound=allowed)

    provider = factory.for_user(principal, "openai_compatible")
    events = list(provider.stream([ChatMessage("user", "hi")], [], model="llama3.1"))

    assert provider.name == "openai_compatible"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "from ollama"
    assert server.requests[-1].headers["authorization"] == f"Bearer {LOCAL_KEY}"
    assert server.requests[-1].body["model"] == "llama3.1"
    assert "openai_compatible" in [c.id for c in factory.usable_providers(principal)]


def test_without_the_allowlist_the_wire_server_url_is_refused(
    services: Services, server: WireServer
) -> None:
    """The same loopback URL as above: refused when saved, and before a run when an admin
    removed it from JARVIS_OUTBOUND_ALLOWLIST after it was saved."""
    principal = factories.user(services.uow, "llm")
    strict = SecretsService(services.uow, services.secrets.cipher, services.clock)
    with pytest.raises(OutboundRefusedError, match="JARVIS_OUTBOUND_ALLOWLIST") as info:
        strict.create(principal, "openai_compatible", "ollama", LOCAL_KEY, base_url=server.url)
    assert info.value.field == "base_url"
    assert services.secrets.providers_available(principal) == set()  # nothing was saved

    services.secrets.create(
        principal, "openai_compatible", "ollama", LOCAL_KEY, base_url=server.url
    )
    before = len(server.requests)
    with pytest.raises(ProviderBadRequestError, match="loopback.*JARVIS_OUTBOUND_ALLOWLIST"):
        ProviderFactory(services.secrets).for_user(principal, "openai_compatible")
    assert len(server.requests) == before
