"""Secrets service on a real database: CRUD, validation, reveal, audit, RLS, swapped rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select, text

from jarvis.bootstrap import Services
from jarvis.db.tables import AuditEvent
from jarvis.errors import CryptoError, NotFoundError, ValidationError
from jarvis.identity import Principal
from tests import factories

OPENAI_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" + "wxyz"
TAVILY_KEY = "tvly-" + "dev-0123456789abcdefQRST"


@pytest.fixture
def alice(services: Services) -> Principal:
    return factories.user(services.uow, "alice")


def _audit(services: Services, principal: Principal) -> list[tuple[str, str | None, str]]:
    """(action, target, details as text) of the user's secret.* audit events, oldest first."""
    with services.uow(principal) as uow:
        rows = uow.session.execute(
            select(AuditEvent.action, AuditEvent.target, AuditEvent.details)
            .where(AuditEvent.user_id == principal.user_id, AuditEvent.action.like("secret.%"))
            .order_by(AuditEvent.created_at)
        ).all()
        return [(r.action, r.target, str(r.details)) for r in rows]


def test_create_list_reveal_update_delete(services: Services, alice: Principal) -> None:
    view = services.secrets.create(alice, "openai", "", OPENAI_KEY)
    assert (view.provider, view.name, view.last4, view.key_version) == (
        "openai",
        "default",
        "wxyz",
        1,
    )
    assert view.masked == "••••wxyz" and view.last_used_at is None
    assert not hasattr(view, "value") and OPENAI_KEY not in repr(view)

    listed = services.secrets.list(alice)
    assert [(s.provider, s.name, s.last4) for s in listed] == [("openai", "default", "wxyz")]
    assert services.secrets.providers_available(alice) == {"openai"}

    revealed = services.secrets.reveal(alice, "openai")
    assert revealed.value == OPENAI_KEY and revealed.base_url is None
    assert OPENAI_KEY not in repr(revealed) and OPENAI_KEY not in str(revealed)
    assert services.secrets.get(alice, view.id).last_used_at == services.clock.now()

    new_key = "sk-" + "N3wValue" * 3 + "9876"
    services.clock.advance(minutes=5)  # type: ignore[attr-defined]
    updated = services.secrets.update(alice, view.id, new_key)
    assert updated.last4 == "9876" and updated.updated_at > updated.created_at
    assert services.secrets.reveal(alice, "openai", "default").value == new_key

    services.secrets.delete(alice, view.id)
    assert services.secrets.list(alice) == []
    assert services.secrets.providers_available(alice) == set()
    with pytest.raises(NotFoundError, match="No OpenAI key is saved"):
        services.secrets.reveal(alice, "openai")

    events = _audit(services, alice)
    assert [e[0] for e in events] == [
        "secret.created",
        "secret.used",
        "secret.updated",
        "secret.used",
        "secret.deleted",
    ]
    for _action, target, details in events:
        assert target == f"secret:{view.id}" and "'provider': 'openai'" in details
        assert OPENAI_KEY not in details and new_key not in details and "wxyz" not in details


def test_openai_compatible_needs_a_base_url_and_reveals_it(
    services: Services, alice: Principal
) -> None:
    with pytest.raises(ValidationError, match="base URL") as info:
        services.secrets.create(alice, "openai_compatible", "ollama", "ollama")
    assert info.value.field == "base_url"
    services.secrets.create(
        alice, "openai_compatible", "ollama", "ollama", base_url="http://localhost:11434/v1/"
    )
    revealed = services.secrets.reveal(alice, "openai_compatible", "ollama")
    assert (revealed.value, revealed.base_url) == ("ollama", "http://localhost:11434/v1")
    with pytest.raises(ValidationError, match="Only OpenAI-compatible and custom"):
        services.secrets.create(alice, "openai", "x", OPENAI_KEY, base_url="https://example.com")


@pytest.mark.parametrize(
    ("provider", "name", "value", "field", "message"),
    [
        ("openai", "default", "", "value", "Enter the secret value."),
        ("openai", "default", "   ", "value", "Enter the secret value."),
        ("custom", "default", "x" * 4097, "value", "too long"),
        ("openai", "default", "not-a-key-0123456789012345", "value", 'starts with "sk-"'),
        ("openai", "default", "sk-ant-api03-0123456789012345678", "value", 'starts with "sk-"'),
        ("anthropic", "default", "sk-0123456789012345678901", "value", 'starts with "sk-ant-"'),
        ("tavily", "default", "tvlyX-0123456789abcdef", "value", 'starts with "tvly-"'),
        ("openai", "default", "sk-0123456789 0123456789ab", "value", 'starts with "sk-"'),
        ("custom", "default", "line\nbreak-value", "value", "line breaks"),
        ("openai", "n" * 101, OPENAI_KEY, "name", "too long"),
        ("openai", "bad/name", OPENAI_KEY, "name", "may contain"),
        ("nope", "default", OPENAI_KEY, "provider", "Choose a provider"),
    ],
)
def test_invalid_input_is_refused_clearly_and_saves_nothing(
    services: Services,
    alice: Principal,
    provider: str,
    name: str,
    value: str,
    field: str,
    message: str,
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        services.secrets.create(alice, provider, name, value)
    assert info.value.field == field
    if len(value.strip()) > 4:
        assert value.strip() not in str(info.value)
    assert services.secrets.list(alice) == []
    assert _audit(services, alice) == []


def test_duplicate_name_per_provider_is_refused(services: Services, alice: Principal) -> None:
    services.secrets.create(alice, "openai", "work", OPENAI_KEY)
    with pytest.raises(ValidationError, match='already have an OpenAI secret named "work"') as info:
        services.secrets.create(alice, "openai", "work", "sk-" + "b" * 30)
    assert info.value.field == "name"
    # Same name, other provider: fine.
    services.secrets.create(alice, "tavily", "work", TAVILY_KEY)
    assert sorted((s.provider, s.name) for s in services.secrets.list(alice)) == [
        ("openai", "work"),
        ("tavily", "work"),
    ]


def test_update_validates_against_the_provider_and_keeps_the_old_value(
    services: Services, alice: Principal
) -> None:
    view = services.secrets.create(alice, "tavily", None, TAVILY_KEY)
    with pytest.raises(ValidationError, match='"tvly-"'):
        services.secrets.update(alice, view.id, "sk-" + "x" * 30)
    assert services.secrets.reveal(alice, "tavily").value == TAVILY_KEY


def test_reveal_prefers_default_then_most_recent(services: Services, alice: Principal) -> None:
    services.secrets.create(alice, "openai", "older", "sk-" + "o" * 24)
    services.clock.advance(minutes=1)  # type: ignore[attr-defined]
    services.secrets.create(alice, "openai", "newer", "sk-" + "n" * 24)
    assert services.secrets.reveal(alice, "openai").value == "sk-" + "n" * 24
    services.secrets.create(alice, "openai", "default", "sk-" + "d" * 24)
    assert services.secrets.reveal(alice, "openai").value == "sk-" + "d" * 24
    assert services.secrets.reveal(alice, "openai", "older").value == "sk-" + "o" * 24
    with pytest.raises(NotFoundError):
        services.secrets.reveal(alice, "openai", "missing")


def test_one_data_key_per_user(services: Services, alice: Principal) -> None:
    services.secrets.create(alice, "openai", "a", OPENAI_KEY)
    services.secrets.create(alice, "tavily", "b", TAVILY_KEY)
    cipher = services.secrets.cipher
    from jarvis.services.secrets import sealed_of

    with services.uow(alice) as uow:
        rows = uow.secrets.all_for(alice.user_id)
        deks = {cipher.data_key_of(sealed_of(r), user_id=alice.user_id) for r in rows}
    assert len(rows) == 2 and len(deks) == 1


def test_short_values_show_no_last_four(services: Services, alice: Principal) -> None:
    view = services.secrets.create(alice, "custom", "pin", "12345678")
    assert view.last4 == "" and view.masked == "••••"


# -- isolation between users (real commits, separate transactions) -----------------------------


def test_user_b_cannot_read_or_change_user_a_secret_even_by_id(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
    owner_engine: Engine,
) -> None:
    s = committed_services
    a, b = committed_user("a"), committed_user("b")
    secret = s.secrets.create(a, "openai", "mine", OPENAI_KEY)

    assert s.secrets.list(b) == []
    assert s.secrets.providers_available(b) == set()
    with pytest.raises(NotFoundError):
        s.secrets.get(b, secret.id)
    with pytest.raises(NotFoundError):
        s.secrets.update(b, secret.id, "sk-" + "h" * 30)
    with pytest.raises(NotFoundError):
        s.secrets.delete(b, secret.id)
    with pytest.raises(NotFoundError):
        s.secrets.reveal(b, "openai", "mine")

    # Below the service: B's transaction sees no row and updates none, even naming A's id.
    with s.uow(b) as uow:
        assert (
            uow.session.execute(
                text("select count(*) from user_secrets where id = :id"), {"id": secret.id}
            ).scalar_one()
            == 0
        )
        updated = uow.session.execute(
            text("update user_secrets set name = 'stolen', user_id = :b where id = :id"),
            {"id": secret.id, "b": b.user_id},
        )
        assert updated.rowcount == 0  # type: ignore[attr-defined]
        uow.commit()
    with s.uow() as uow:  # no user at all: no rows
        assert uow.session.execute(text("select count(*) from user_secrets")).scalar_one() == 0
    assert s.secrets.reveal(a, "openai", "mine").value == OPENAI_KEY
    with owner_engine.connect() as conn:
        assert (
            conn.execute(
                text("select name from user_secrets where id = :id"), {"id": secret.id}
            ).scalar_one()
            == "mine"
        )


def test_a_ciphertext_copied_into_another_users_row_fails_closed(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
    owner_engine: Engine,
) -> None:
    s = committed_services
    a, b = committed_user("a"), committed_user("b")
    sa = s.secrets.create(a, "openai", "default", OPENAI_KEY)
    sb = s.secrets.create(b, "openai", "default", "sk-" + "B" * 30)
    sa2 = s.secrets.create(a, "tavily", "default", TAVILY_KEY)
    with owner_engine.begin() as conn:
        # B's row gets A's ciphertext, nonce and wrapped key (an attacker with table access).
        conn.execute(
            text(
                "update user_secrets t set ciphertext = s.ciphertext, nonce = s.nonce, "
                "wrapped_dek = s.wrapped_dek from user_secrets s where s.id = :src and t.id = :dst"
            ),
            {"src": sa.id, "dst": sb.id},
        )
        # A's tavily row gets A's own openai ciphertext (same user, same data key, other secret).
        conn.execute(
            text(
                "update user_secrets t set ciphertext = s.ciphertext, nonce = s.nonce "
                "from user_secrets s where s.id = :src and t.id = :dst"
            ),
            {"src": sa.id, "dst": sa2.id},
        )
    with pytest.raises(CryptoError):
        s.secrets.reveal(b, "openai")
    with pytest.raises(CryptoError):
        s.secrets.reveal(a, "tavily")
    assert s.secrets.reveal(a, "openai").value == OPENAI_KEY
    assert [e[0] for e in _audit(s, b)][-1] == "secret.decrypt_failed"


def test_an_admin_cannot_read_other_users_secrets(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
) -> None:
    s = committed_services
    owner = committed_user("owner")
    admin = Principal(committed_user("admin").user_id, "admin@example.com", role="admin")
    secret = s.secrets.create(owner, "openai", "default", OPENAI_KEY)
    assert s.secrets.list(admin) == []
    with pytest.raises(NotFoundError):
        s.secrets.get(admin, secret.id)
    with s.uow(admin) as uow:
        assert (
            uow.session.execute(
                text("select count(*) from user_secrets where user_id = :u"), {"u": owner.user_id}
            ).scalar_one()
            == 0
        )


def test_concurrent_creates_with_one_name_save_one_secret(
    committed_services: Services,
    committed_user: Callable[[str], Principal],
) -> None:
    import threading

    s = committed_services
    user = committed_user("race")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create(i: int) -> None:
        barrier.wait()
        try:
            s.secrets.create(user, "tavily", "shared", f"tvly-{i}" + "r" * 20)
            outcomes.append("saved")
        except ValidationError as exc:
            assert "already have" in str(exc)
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "saved"]
    assert len(s.secrets.list(user)) == 1
