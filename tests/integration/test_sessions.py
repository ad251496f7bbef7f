"""Sessions: refresh-token rotation, reuse detection (no grace), concurrency, expiry and
revocation; browser session tickets and cookie tokens."""

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
from jarvis.services.auth import BROWSER_TICKET_TTL, IssuedSession
from tests import factories
from tests.factories import PASSWORD as PW


def family_rows(services: Services, issued: IssuedSession) -> list[tuple[str, str | None]]:
    with services.uow(issued.principal) as uow:
        return [(r.token_hash, r.revoked_reason) for r in uow.tokens.family(issued.session_id)]


def test_refresh_rotates_on_every_use_and_keeps_the_chain(services: Services) -> None:
    user = factories.account(services, "chain@example.com")
    first = services.sign_in.login("chain@example.com", PW, ip="203.0.113.1", user_agent="UA-1")
    services.clock.advance(seconds=1)  # the chain is listed by issue time
    second = services.sessions.refresh(first.refresh_token)
    services.clock.advance(seconds=1)
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
    services.sessions.refresh(laptop.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(laptop.refresh_token)
    assert services.sessions.refresh(phone.refresh_token).session_id == phone.session_id


def test_an_immediate_replay_is_refused_and_revokes_the_session(
    services: Services, clock: FixedClock
) -> None:
    """No grace window: even one second after the rotation, presenting the rotated token
    again is reuse — refused, the whole session revoked, audited (browsers hold no refresh
    token, so a replay is never a reload race)."""
    admin = factories.admin_account(services, "race-admin@example.com")
    factories.account(services, "race-reload@example.com")
    first = services.sign_in.login("race-reload@example.com", PW)
    legit = services.sessions.refresh(first.refresh_token)
    clock.advance(seconds=1)
    with pytest.raises(TokenError):
        services.sessions.refresh(first.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(legit.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.authenticate(legit.access_token)
    with services.uow(first.principal) as uow:
        chain = uow.tokens.family(first.session_id)
        assert [row.revoked_reason for row in chain] == ["rotated", "reuse"]  # no sibling
    assert services.sessions.list_active(first.principal) == []
    events = services.admin.audit_log(
        admin, action="session.refresh_reuse", user_id=first.principal.user_id
    )
    assert len(events) == 1 and events[0].target == f"session:{first.session_id}"
    for token in (first.refresh_token, legit.refresh_token):
        assert token not in repr(events)


def test_a_replay_at_the_same_instant_is_refused_too(services: Services) -> None:
    """Reuse at the very moment of the rotation (no clock advance) revokes all the same."""
    factories.account(services, "instant@example.com")
    first = services.sign_in.login("instant@example.com", PW)
    legit = services.sessions.refresh(first.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(first.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.refresh(legit.refresh_token)
    assert {reason for _h, reason in family_rows(services, first)} == {"rotated", "reuse"}


def test_reuse_after_the_successor_was_rotated_revokes_the_family(services: Services) -> None:
    """Further down the chain too: the rotated first token revokes the live third one."""
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
    is reuse and revokes the session: see the tests above.)"""
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


# -- browser sessions (the HttpOnly cookie's token) ------------------------------------------------


def browser_token(services: Services, issued: IssuedSession) -> str:
    """What a browser's cookie holds after signing in (ticket redeemed at the cookie route)."""
    ticket = services.sessions.browser_ticket(issued.principal, issued.session_id)
    return services.sessions.redeem_browser_ticket(ticket).token


def test_a_browser_token_resumes_its_session_without_rotating(
    services: Services, clock: FixedClock
) -> None:
    user = factories.account(services, "browser@example.com")
    issued = services.sign_in.login("browser@example.com", PW)
    ticket = services.sessions.browser_ticket(user, issued.session_id)
    cookie = services.sessions.redeem_browser_ticket(ticket, ip="203.0.113.9")
    assert len(cookie.token) >= 43 and cookie.token != ticket
    assert cookie.expires_at == issued.refresh_expires_at  # the session's absolute expiry
    # Reloads and tabs present the same token, as often as they like, at the same moment.
    for _ in range(3):
        resumed = services.sessions.resume_browser(cookie.token)
        assert resumed.session_id == issued.session_id and resumed.principal == user
        assert not resumed.reissue
        assert services.sessions.authenticate(resumed.access_token) == user
        clock.advance(seconds=1)
    assert services.sessions.browser_token_live(cookie.token)
    # Only hashes are stored.
    with services.uow(user) as uow:
        dump = repr(uow.session.execute(text("select * from browser_credentials")).all())
    assert ticket not in dump and cookie.token not in dump
    assert hash_refresh_token(cookie.token) in dump


def test_a_ticket_is_single_use_and_short_lived(services: Services, clock: FixedClock) -> None:
    user = factories.account(services, "ticket@example.com")
    issued = services.sign_in.login("ticket@example.com", PW)
    ticket = services.sessions.browser_ticket(user, issued.session_id)
    services.sessions.redeem_browser_ticket(ticket)
    with pytest.raises(TokenError):
        services.sessions.redeem_browser_ticket(ticket)
    late = services.sessions.browser_ticket(user, issued.session_id)
    clock.advance(seconds=BROWSER_TICKET_TTL.total_seconds())
    with pytest.raises(TokenError):
        services.sessions.redeem_browser_ticket(late)
    clock.advance(seconds=-BROWSER_TICKET_TTL.total_seconds())
    with pytest.raises(TokenError):  # spent by the failed attempt
        services.sessions.redeem_browser_ticket(late)
    # A ticket is not a token, nor a refresh token one.
    other = services.sessions.browser_ticket(user, issued.session_id)
    with pytest.raises(TokenError):
        services.sessions.resume_browser(other)
    with pytest.raises(TokenError):
        services.sessions.redeem_browser_ticket(issued.refresh_token)
    with pytest.raises(TokenError):
        services.sessions.resume_browser(issued.refresh_token)


@pytest.mark.parametrize("junk", ["", "short", "x" * 10_240, "A" * 43, None, 7])
def test_browser_junk_is_a_token_error(services: Services, junk: object) -> None:
    with pytest.raises(TokenError):
        services.sessions.resume_browser(junk)  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        services.sessions.redeem_browser_ticket(junk)  # type: ignore[arg-type]
    assert not services.sessions.browser_token_live(junk)
    assert not services.sessions.end_browser(junk)


def test_no_ticket_for_an_ended_session(services: Services) -> None:
    user = factories.account(services, "ended-ticket@example.com")
    issued = services.sign_in.login("ended-ticket@example.com", PW)
    ticket = services.sessions.browser_ticket(user, issued.session_id)
    services.sessions.logout(user, issued.session_id)
    with pytest.raises(TokenError):
        services.sessions.browser_ticket(user, issued.session_id)
    with pytest.raises(TokenError):  # issued before the logout: worthless after it
        services.sessions.redeem_browser_ticket(ticket)


@pytest.mark.parametrize("how", ["logout", "revoke", "everywhere", "deactivate", "password"])
def test_a_browser_token_dies_with_its_session(services: Services, how: str) -> None:
    admin = factories.admin_account(services, f"dies-admin-{how}@example.com")
    user = factories.account(services, f"dies-{how}@example.com", actor=admin)
    issued = services.sign_in.login(f"dies-{how}@example.com", PW)
    token = browser_token(services, issued)
    if how == "logout":
        services.sessions.logout(user, issued.session_id)
    elif how == "revoke":
        services.sessions.revoke(user, issued.session_id)
    elif how == "everywhere":
        services.sessions.sign_out_everywhere(user)
    elif how == "deactivate":
        services.admin.set_active(admin, user.user_id, False)
    else:
        services.admin.reset_password(admin, user.user_id, "another passphrase")
    with pytest.raises(TokenError):
        services.sessions.resume_browser(token)
    assert not services.sessions.browser_token_live(token)


def test_ending_a_browser_session_by_its_cookie(services: Services) -> None:
    admin = factories.admin_account(services, "end-admin@example.com")
    user = factories.account(services, "end@example.com", actor=admin)
    issued = services.sign_in.login("end@example.com", PW)
    other = services.sign_in.login("end@example.com", PW)
    token = browser_token(services, issued)
    assert services.sessions.end_browser(token, ip="203.0.113.7")
    with pytest.raises(TokenError):
        services.sessions.resume_browser(token)
    with pytest.raises(TokenError):
        services.sessions.refresh(issued.refresh_token)
    assert [v.session_id for v in services.sessions.list_active(user)] == [other.session_id]
    assert services.sessions.end_browser(token)  # again: harmless
    events = services.admin.audit_log(admin, action="logout", user_id=user.user_id)
    assert [e.target for e in events] == [f"session:{issued.session_id}"]
    assert token not in repr(events)


def test_a_role_change_replaces_the_browser_token(services: Services) -> None:
    admin = factories.admin_account(services, "role-admin@example.com")
    user = factories.account(services, "role@example.com", actor=admin)
    issued = services.sign_in.login("role@example.com", PW)
    old = browser_token(services, issued)
    services.admin.set_role(admin, user.user_id, "admin")
    resumed = services.sessions.resume_browser(old)
    assert resumed.reissue and resumed.principal.role == "admin"
    promoted = services.sessions.browser_ticket(resumed.principal, issued.session_id)
    new = services.sessions.redeem_browser_ticket(promoted).token
    assert not services.sessions.resume_browser(new).reissue
    with pytest.raises(TokenError):  # the token issued before the change stopped working
        services.sessions.resume_browser(old)


def test_a_browser_token_of_one_user_opens_nothing_for_another(services: Services) -> None:
    alice = factories.account(services, "alice-b@example.com")
    bob = factories.account(services, "bob-b@example.com")
    a = services.sign_in.login("alice-b@example.com", PW)
    services.sign_in.login("bob-b@example.com", PW)
    with pytest.raises(TokenError):  # Bob cannot take a ticket for Alice's session
        services.sessions.browser_ticket(bob, a.session_id)
    token = browser_token(services, a)
    assert services.sessions.resume_browser(token).principal == alice
