"""A key's last use (the API keys page shows it) is recorded once a minute: a request within a
minute of the recorded one reads the key and writes nothing (migration 0024), so it does not
wait for the disk."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from jarvis.bootstrap import Services
from jarvis.clock import FixedClock
from jarvis.errors import TokenError
from jarvis.identity import Principal
from tests import factories


def _version(services: Services, owner: Principal) -> tuple[str, str]:
    """The key row's version (a write makes a new one, even of the same values)."""
    with services.uow(owner) as uow:
        row = uow.session.execute(text("SELECT xmin::text, ctid::text FROM api_keys")).one()
    return row[0], row[1]


def test_a_keys_use_is_written_once_a_minute(services: Services, clock: FixedClock) -> None:
    owner = factories.user(services.uow, "key-use")
    key = services.api_keys.create(owner, "script")
    [listed] = services.api_keys.list(owner)
    assert listed.last_used_at is None

    first_use = clock.now()
    assert services.api_keys.authenticate(key.secret).user_id == owner.user_id
    assert services.api_keys.list(owner)[0].last_used_at == first_use
    written = _version(services, owner)

    clock.advance(seconds=59)
    for _ in range(3):
        assert services.api_keys.authenticate(key.secret).user_id == owner.user_id
    assert services.api_keys.list(owner)[0].last_used_at == first_use
    assert _version(services, owner) == written  # read, not rewritten

    clock.advance(seconds=2)
    services.api_keys.authenticate(key.secret)
    assert services.api_keys.list(owner)[0].last_used_at == clock.now()
    assert _version(services, owner) != written

    services.api_keys.revoke(owner, key.key.id)
    clock.advance(minutes=5)
    with pytest.raises(TokenError):
        services.api_keys.authenticate(key.secret)
