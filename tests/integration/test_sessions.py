"""Sessions: refresh-token rotation, reuse detection, reload races, concurrency, expiry and
revocation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from jarvis.bootstrap import Services
from jarvis.clock import FixedClock
from jarvis.errors import AccountDisabledError, InvalidCredentialsError, TokenError
from jarvis.security.tokens import hash_refresh_token
from jarvis.services.auth import REFRESH_RACE_GRACE, IssuedSession
from tests import factories
from tests.factories import PASSWORD as PW


def family_rows(services: Services, issued: IssuedSession) -> list[tuple[str, str | None]]:
    with services.uow(issued.principal) as uow:
        return [(r.token_hash, r.revoked_reason) for r in uow.tokens.family(issued.session_id)]


def test_refresh_rotates_on_every_use_and_keeps_the_chain(services: Services) -> None:
    user = factories.account(services, "chain@example.com")
    first = services.sign_in.login("chain@example.com", PW, ip="203.0.113.1", user_agent="UA-1")
    second = services.sessions.refresh(first.refresh_token)
    third = services.sessions.refresh(second.refresh_token, user_agent="UA-2")
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert first.session_id == second.session_id == third.session_id
    assert third.principal == user
    assert services.sessions.authenticate(third.access_token) == user
    rows = family_rows(services, first)
    assert [reason for _h, reason in rows] == ["rotated", "rotated", None]
    with services.uow(first.principal) as uow:
        chain = uow.tokens.family(first.session_id)
        assert chain[1].parent_id == chain[0].id and chain[2].parent_id == chain[1].id
        # The absolute lifetime is the family's, not reset by rotation.
        assert len({row.expires_at for row in chain}) == 1


def test_only_hashes_are_stored(services: Services, owner_engine: Engine) -> None:
    factories.account(services, "hash@example.com")
    issued = services.sign_in.login("hash@example.com", PW)
    rotated = services.sessions.refresh(issued.refresh_token)
    with services.uow(issued.principal) as uow:
        stored = uow.session.execute(text("select * from refresh_tokens")).all()
    dump = repr(stored)
    for token in (issued.refresh_token, rotated.refresh_token):
        assert token not in dump
        assert hash_refresh_token(token) in dump
    assert rotated.access_token not in dump


def test_reusing_a_rotated_token_revokes_the_whole_family_and_is_audited(
    services: Services,
) -> None:
    admin = factories.admin_account(services, "reuse-admin@example.com")
    factories.account(services, "reuse@example.com")
    stolen = services.sign_in.login("reuse@example.com", PW)
    legit = services.sessions.refresh(stolen.refresh_token)  # the real user rotates first
    assert services.sessions.confirm(legit.refresh_token)  # their browser stored it
    with pytest.raises(TokenError):
        services.sessions.refresh(stolen.refresh_token)  # the thief replays the old one
    # The whole family is dead, including the legitimate newest token and access checks.
    with pytest.raises(TokenError):
        services.sessions.refresh(legit.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.authenticate(legit.access_token)
    assert {reason for _h, reason in family_rows(services, stolen)} == {"rotated", "reuse"}
    events = services.admin.audit_log(
        admin, action="session.refresh_reuse", user_id=stolen.principal.user_id
    )
    assert len(events) == 1
    assert events[0].target == f"session:{stolen.session_id}"
    assert stolen.refresh_token not in repr(events) and legit.refresh_token not in repr(events)


def test_other_sessions_survive_a_reuse_in_one_family(services: Services) -> None:
    factories.account(services, "two@example.com")
    laptop = services.sign_in.login("two@example.com", PW)
    phone = services.sign_in.login("two@example.com", PW)
    services.sessions.confirm(services.sessions.refresh(laptop.refresh_token).refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(laptop.refresh_token)
    assert services.sessions.refresh(phone.refresh_token).session_id == phone.session_id


def test_a_reload_race_gets_another_token_and_keeps_the_session(
    services: Services, clock: FixedClock
) -> None:
    """Two quick reloads: the second presents the rotated token before the browser stored (and
    confirmed) its successor. That is a race, not theft: a sibling token, the session lives."""
    admin = factories.admin_account(services, "race-admin@example.com")
    factories.account(services, "race-reload@example.com")
    first = services.sign_in.login("race-reload@example.com", PW)
    lost = services.sessions.refresh(first.refresh_token)  # the first reload: never delivered
    clock.advance(seconds=REFRESH_RACE_GRACE.total_seconds() - 1)
    retry = services.sessions.refresh(first.refresh_token)  # the second reload, same cookie
    assert retry.session_id == first.session_id
    assert len({first.refresh_token, lost.refresh_token, retry.refresh_token}) == 3
    assert services.sessions.authenticate(retry.access_token) == retry.principal
    with services.uow(first.principal) as uow:
        chain = uow.tokens.family(first.session_id)
        assert [row.revoked_reason for row in chain] == ["rotated", None, None]
        assert chain[1].parent_id == chain[0].id and chain[2].parent_id == chain[0].id
        assert len({row.expires_at for row in chain}) == 1
    # The session goes on from the delivered token; the account page shows it once.
    services.sessions.confirm(retry.refresh_token)
    after = services.sessions.refresh(retry.refresh_token)
    assert after.session_id == first.session_id
    assert [v.session_id for v in services.sessions.list_active(after.principal)] == [
        first.session_id
    ]
    mine = first.principal.user_id  # (other tests' committed events are not this one's)
    events = services.admin.audit_log(admin, action="session.refresh_retry", user_id=mine)
    assert len(events) == 1 and events[0].target == f"session:{first.session_id}"
    for token in (first.refresh_token, lost.refresh_token, retry.refresh_token):
        assert token not in repr(events)
    assert services.admin.audit_log(admin, action="session.refresh_reuse", user_id=mine) == []


def test_reuse_after_the_successor_was_confirmed_revokes_the_family(
    services: Services, clock: FixedClock
) -> None:
    """Once the browser confirmed the successor, the old token is a stolen copy — at once."""
    admin = factories.admin_account(services, "confirmed-admin@example.com")
    factories.account(services, "confirmed@example.com")
    first = services.sign_in.login("confirmed@example.com", PW)
    legit = services.sessions.refresh(first.refresh_token)
    assert services.sessions.confirm(legit.refresh_token)
    assert not services.sessions.confirm(legit.refresh_token)  # once is enough
    clock.advance(seconds=1)
    with pytest.raises(TokenError):
        services.sessions.refresh(first.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(legit.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.authenticate(legit.access_token)
    assert {reason for _h, reason in family_rows(services, first)} == {"rotated", "reuse"}
    mine = first.principal.user_id
    assert len(services.admin.audit_log(admin, action="session.refresh_reuse", user_id=mine)) == 1
    assert services.admin.audit_log(admin, action="session.refresh_retry", user_id=mine) == []


def test_reuse_after_the_grace_revokes_the_family_even_if_never_confirmed(
    services: Services, clock: FixedClock
) -> None:
    admin = factories.admin_account(services, "grace-admin@example.com")
    factories.account(services, "grace@example.com")
    first = services.sign_in.login("grace@example.com", PW)
    legit = services.sessions.refresh(first.refresh_token)  # a browser that never confirms
    clock.advance(seconds=REFRESH_RACE_GRACE.total_seconds())
    with pytest.raises(TokenError):
        services.sessions.refresh(first.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(legit.refresh_token)
    assert {reason for _h, reason in family_rows(services, first)} == {"rotated", "reuse"}
    mine = first.principal.user_id
    assert len(services.admin.audit_log(admin, action="session.refresh_reuse", user_id=mine)) == 1


def test_reuse_after_the_successor_was_rotated_revokes_the_family(services: Services) -> None:
    """Within the grace too: a successor that was itself used was delivered somewhere."""
    factories.account(services, "rotated-on@example.com")
    first = services.sign_in.login("rotated-on@example.com", PW)
    second = services.sessions.refresh(first.refresh_token)
    third = services.sessions.refresh(second.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(first.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(third.refresh_token)


def test_idle_expiry(services: Services, clock: FixedClock) -> None:
    factories.account(services, "idle@example.com")
    idle = services.settings.refresh_idle_ttl_seconds
    issued = services.sign_in.login("idle@example.com", PW)
    clock.advance(seconds=idle - 60)
    kept = services.sessions.refresh(issued.refresh_token)  # used in time: the window restarts
    clock.advance(seconds=idle - 60)
    assert services.sessions.check(kept.principal.user_id, kept.session_id) == kept.principal
    clock.advance(seconds=idle + 1)
    with pytest.raises(TokenError):
        services.sessions.check(kept.principal.user_id, kept.session_id)
    latest = services.sessions.refresh  # the last token is idle too
    with pytest.raises(TokenError):
        latest(kept.refresh_token)


def test_absolute_expiry_even_when_used_all_the_time(services: Services, clock: FixedClock) -> None:
    factories.account(services, "absolute@example.com")
    absolute = services.settings.refresh_absolute_ttl_seconds
    idle = services.settings.refresh_idle_ttl_seconds
    issued = services.sign_in.login("absolute@example.com", PW)
    elapsed = 0
    while elapsed + idle // 2 < absolute:
        clock.advance(seconds=idle // 2)
        elapsed += idle // 2
        issued = services.sessions.refresh(issued.refresh_token)
    clock.advance(seconds=absolute - elapsed + 1)
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.check(issued.principal.user_id, issued.session_id)


def test_logout_revokes_the_session(services: Services) -> None:
    factories.account(services, "logout@example.com")
    issued = services.sign_in.login("logout@example.com", PW)
    other = services.sign_in.login("logout@example.com", PW)
    services.sessions.logout(issued.principal, issued.session_id)
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.authenticate(issued.access_token)
    # Only that session: the other one lives on.
    assert services.sessions.authenticate(other.access_token) == other.principal


def test_password_change_revokes_every_other_session(services: Services) -> None:
    user = factories.account(services, "change@example.com")
    here = services.sign_in.login("change@example.com", PW)
    there = services.sign_in.login("change@example.com", PW)
    with pytest.raises(InvalidCredentialsError):
        services.accounts.change_password(user, "not the password", "a new passphrase")
    ended = services.accounts.change_password(
        user, PW, "a new passphrase", keep_session_id=here.session_id
    )
    assert ended == 1
    with pytest.raises(TokenError):
        services.sessions.refresh(there.refresh_token)
    assert services.sessions.authenticate(here.access_token) == user
    with pytest.raises(InvalidCredentialsError):
        services.sign_in.check_credentials("change@example.com", PW)
    assert services.sign_in.check_credentials("change@example.com", "a new passphrase") == user


def test_sessions_list_and_revoke_one_and_everywhere(services: Services) -> None:
    user = factories.account(services, "list@example.com")
    a = services.sign_in.login("list@example.com", PW, ip="198.51.100.1", user_agent="Firefox")
    b = services.sign_in.login("list@example.com", PW, ip="198.51.100.2", user_agent="Chrome")
    views = services.sessions.list_active(user, current_session_id=a.session_id)
    assert {v.user_agent for v in views} == {"Firefox", "Chrome"}
    assert {v.ip for v in views} == {"198.51.100.1", "198.51.100.2"}
    assert [v.current for v in views if v.user_agent == "Firefox"] == [True]
    services.sessions.revoke(user, b.session_id)
    assert [v.user_agent for v in services.sessions.list_active(user)] == ["Firefox"]
    with pytest.raises(TokenError):
        services.sessions.refresh(b.refresh_token)
    services.sessions.sign_out_everywhere(user)
    assert services.sessions.list_active(user) == []
    with pytest.raises(TokenError):
        services.sessions.authenticate(a.access_token)


def test_a_user_cannot_revoke_someone_elses_session(services: Services) -> None:
    alice = factories.account(services, "alice-s@example.com")
    factories.account(services, "bob-s@example.com")
    bob = services.sign_in.login("bob-s@example.com", PW)
    with pytest.raises(TokenError):
        services.sessions.revoke(alice, bob.session_id)
    assert services.sessions.authenticate(bob.access_token) == bob.principal


def test_deactivation_ends_sessions_at_once(services: Services) -> None:
    admin = factories.admin_account(services, "deact-admin@example.com")
    factories.account(services, "deact@example.com")
    issued = services.sign_in.login("deact@example.com", PW)
    services.admin.set_active(admin, issued.principal.user_id, False)
    with pytest.raises(TokenError):
        services.sessions.authenticate(issued.access_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    with pytest.raises(AccountDisabledError):
        services.sessions.open(issued.principal)


@pytest.mark.parametrize(
    "junk", ["", "short", "x" * 10_240, "eyJhbGciOiJIUzI1NiJ9.e30.abc", "A" * 43, None, 7]
)
def test_refresh_with_junk_is_a_token_error(services: Services, junk: object) -> None:
    with pytest.raises(TokenError):
        services.sessions.refresh(junk)  # type: ignore[arg-type]


def test_access_token_is_refused_as_refresh_token_and_vice_versa(services: Services) -> None:
    factories.account(services, "confuse@example.com")
    issued = services.sign_in.login("confuse@example.com", PW)
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.access_token)
    with pytest.raises(TokenError):
        services.sessions.authenticate(issued.refresh_token)


def test_two_concurrent_refreshes_exactly_one_wins(
    committed_services: Services, unique_email: Callable[[str], str], owner_engine: Engine
) -> None:
    """Two threads, two connections, one token, both transactions read it before either
    writes: one new pair, one TokenError, no fork. (One that starts after the other committed
    is a reload race and gets a sibling: see the tests above.)"""
    services = committed_services
    email = unique_email("race")
    factories.account(services, email)
    for _attempt in range(5):
        issued = services.sign_in.login(email, PW)
        barrier = threading.Barrier(2)
        results: list[object] = [None, None]

        def run(i: int, token: str = issued.refresh_token, slot: list[object] = results) -> None:
            barrier.wait()
            try:
                slot[i] = services.sessions.refresh(token)
            except TokenError as exc:
                slot[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        # Writes to refresh_tokens wait until both refreshes have read the token and queued.
        with owner_engine.connect() as lock:
            lock.execute(text("lock table refresh_tokens in share row exclusive mode"))
            for t in threads:
                t.start()
            for _ in range(3000):
                waiting = lock.scalar(
                    text(
                        "select count(*) from pg_locks where not granted "
                        "and relation = 'refresh_tokens'::regclass"
                    )
                )
                if waiting == 2:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("the two refreshes never queued behind the lock")
            lock.rollback()
        for t in threads:
            t.join(30)
        winners = [r for r in results if isinstance(r, IssuedSession)]
        losers = [r for r in results if isinstance(r, TokenError)]
        assert len(winners) == 1 and len(losers) == 1, results
        with services.uow(issued.principal) as uow:
            rows = [
                (r.id, r.parent_id, r.revoked_reason) for r in uow.tokens.family(issued.session_id)
            ]
        # Never two successors of one token.
        assert len(rows) == 2, rows
        assert rows[1][1] == rows[0][0]
        assert rows[0][2] in ("rotated", "reuse")
