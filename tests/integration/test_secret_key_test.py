"""The Secrets page's "Test": a stored key is checked against its provider with one model-list
call (the real openai / anthropic SDKs against a local server speaking their wire formats), and
the answer is a sentence that never contains the key nor the provider's own error text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from jarvis.bootstrap import Services, build_services
from jarvis.config import Settings
from jarvis.db.tables import AuditEvent
from jarvis.db.uow import UnitOfWorkFactory
from jarvis.errors import ValidationError
from jarvis.identity import Principal
from jarvis.llm.key_check import KeyChecker
from jarvis.security.outbound import OutboundPolicy
from jarvis.security.passwords import PasswordHasher
from tests import factories
from tests.conftest import TEST_OUTBOUND_ALLOWLIST
from tests.llm_wire_server import Reply, WireServer

OPENAI_KEY = "sk-proj-" + "GoodKey0123456789abcd" + "W0rk"
WRONG_OPENAI_KEY = "sk-proj-" + "WrongKey0123456789abc" + "N0pe"
ANTHROPIC_KEY = "sk-ant-" + "GoodKey0123456789abcd" + "Ant1"
WRONG_ANTHROPIC_KEY = "sk-ant-" + "WrongKey0123456789abc" + "Ant2"
MODELS = [f"model-{i}" for i in range(37)]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture
def checked(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    clock: object,
    fast_hasher: PasswordHasher,
    wire: WireServer,
) -> Services:
    """Services whose OpenAI and Anthropic endpoints are the wire server (timeout 1 s)."""
    checker = KeyChecker(
        timeout=1.0,
        outbound=OutboundPolicy(tuple(TEST_OUTBOUND_ALLOWLIST.split(","))),
        base_urls={"openai": wire.url + "/v1", "anthropic": wire.url},
    )
    return build_services(
        settings,
        uow=uow_factory,
        clock=clock,
        hasher=fast_hasher,
        key_checker=checker,  # type: ignore[arg-type]
    )


@pytest.fixture
def alice(checked: Services) -> Principal:
    return factories.user(checked.uow, "alice")


def _tested_audit(services: Services, who: Principal) -> list[dict[str, object]]:
    with services.uow(who) as uow:
        rows = uow.session.execute(
            select(AuditEvent.details)
            .where(AuditEvent.user_id == who.user_id, AuditEvent.action == "secret.tested")
            .order_by(AuditEvent.created_at)
        ).all()
    return [dict(r.details) for r in rows]


def test_a_working_openai_key_says_how_many_models_it_sees(
    checked: Services, alice: Principal, wire: WireServer
) -> None:
    wire.models(MODELS, key=OPENAI_KEY)
    secret = checked.secrets.create(alice, "openai", "work", OPENAI_KEY)
    result = checked.secrets.test(alice, secret.id)
    assert result.ok and result.models == 37
    assert result.message == "Works — 37 models available."
    assert wire.requests[-1].path == "/v1/models"
    assert wire.requests[-1].headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert _tested_audit(checked, alice) == [{"provider": "openai", "name": "work", "works": True}]


def test_a_wrong_openai_key_is_rejected_without_echoing_it(
    checked: Services, alice: Principal, wire: WireServer
) -> None:
    wire.models(MODELS, key=OPENAI_KEY)
    secret = checked.secrets.create(alice, "openai", "old", WRONG_OPENAI_KEY)
    result = checked.secrets.test(alice, secret.id)
    assert not result.ok and result.status == 401
    assert result.message == "Rejected by OpenAI: the key is not valid (401)."
    audit = _tested_audit(checked, alice)
    assert audit == [{"provider": "openai", "name": "old", "works": False, "status": 401}]
    assert WRONG_OPENAI_KEY[-8:] not in str(audit)


def test_a_provider_error_that_quotes_the_key_is_not_repeated(
    checked: Services, alice: Principal, wire: WireServer
) -> None:
    wire.script(Reply.error(403, f"key {OPENAI_KEY} may not do that"))
    secret = checked.secrets.create(alice, "openai", "", OPENAI_KEY)
    result = checked.secrets.test(alice, secret.id)
    assert result.message == "Rejected by OpenAI: the key may not list models (403)."
    assert "W0rk" not in result.message and "may not do that" not in result.message


def test_anthropic_keys_through_the_anthropic_sdk(
    checked: Services, alice: Principal, wire: WireServer
) -> None:
    wire.models(MODELS[:3], key=ANTHROPIC_KEY)
    good = checked.secrets.create(alice, "anthropic", "good", ANTHROPIC_KEY)
    bad = checked.secrets.create(alice, "anthropic", "bad", WRONG_ANTHROPIC_KEY)
    assert checked.secrets.test(alice, good.id).message == "Works — 3 models available."
    sent = wire.requests[-1].headers
    assert ANTHROPIC_KEY in (sent.get("x-api-key"), sent.get("authorization", "")[7:])
    assert "anthropic-version" in sent
    assert wire.requests[-1].path.startswith("/v1/models")
    refused = checked.secrets.test(alice, bad.id)
    assert refused.message == "Rejected by Anthropic: the key is not valid (401)."


def test_an_openai_compatible_server_through_the_guarded_client(
    checked: Services, alice: Principal, wire: WireServer
) -> None:
    wire.models(["llama3.1"], key="ollama")
    secret = checked.secrets.create(
        alice, "openai_compatible", "", "ollama", base_url=wire.url + "/v1"
    )
    port = wire.url.rsplit(":", 1)[1]
    assert checked.secrets.test(alice, secret.id).message == "Works — 1 model available."
    wire.models(["llama3.1"], key="something-else")
    refused = checked.secrets.test(alice, secret.id)
    assert refused.message == (
        f"Rejected by the OpenAI-compatible server at 127.0.0.1:{port}: the key is not valid (401)."
    )


def test_an_unreachable_or_slow_provider_is_said_so(
    checked: Services, alice: Principal, wire: WireServer
) -> None:
    wire.script(Reply(body={"data": []}, delay=3.0))
    secret = checked.secrets.create(alice, "openai", "", OPENAI_KEY)
    slow = checked.secrets.test(alice, secret.id)
    assert not slow.ok and slow.message == "Could not reach OpenAI: no answer within 1 s."

    closed = checked.secrets.create(
        alice, "openai_compatible", "gone", "ollama", base_url="http://127.0.0.1:9/v1"
    )
    gone = checked.secrets.test(alice, closed.id)
    assert gone.message == (
        "Could not reach the OpenAI-compatible server at 127.0.0.1:9: the connection failed."
    )


def test_the_outbound_guard_applies_to_tests_too(
    settings: Settings, uow_factory: UnitOfWorkFactory, fast_hasher: PasswordHasher
) -> None:
    # An instance whose allow-list does not open loopback: a stored loopback URL (saved while it
    # was allowed) is not connected to.
    open_services = build_services(settings, uow=uow_factory, hasher=fast_hasher)
    alice = factories.user(open_services.uow, "alice")
    secret = open_services.secrets.create(
        alice, "openai_compatible", "", "ollama", base_url="http://127.0.0.1:9/v1"
    )
    strict = build_services(
        settings,
        uow=uow_factory,
        hasher=fast_hasher,
        key_checker=KeyChecker(timeout=1.0, outbound=OutboundPolicy(())),
    )
    result = strict.secrets.test(alice, secret.id)
    assert not result.ok and "may not connect to that address" in result.message


def test_providers_without_a_model_list_cannot_be_tested(
    checked: Services, alice: Principal
) -> None:
    tavily = checked.secrets.create(alice, "tavily", "", "tvly-" + "dev-0123456789abcdefQRST")
    assert not checked.secrets.testable("tavily") and checked.secrets.testable("anthropic")
    with pytest.raises(ValidationError, match="cannot test a Tavily"):
        checked.secrets.test(alice, tavily.id)


def test_messages_name_providers_with_the_right_article(
    checked: Services, alice: Principal
) -> None:
    checked.secrets.create(alice, "openai", "work", OPENAI_KEY)
    with pytest.raises(ValidationError, match='You already have an OpenAI secret named "work"'):
        checked.secrets.create(alice, "openai", "work", OPENAI_KEY)
    checked.secrets.create(alice, "anthropic", "", ANTHROPIC_KEY)
    with pytest.raises(ValidationError, match="You already have an Anthropic secret named"):
        checked.secrets.create(alice, "anthropic", "", ANTHROPIC_KEY)
