"""The Account page's sessions: named by device and age, ended ones left out, "sign out all
other sessions"; and one audit row per sign-in."""

from __future__ import annotations

from sqlalchemy import select

from jarvis.bootstrap import Services
from jarvis.db.tables import AuditEvent
from jarvis.errors import TokenError
from jarvis.identity import Principal
from tests import factories
from tests.factories import PASSWORD as PW

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _actions(services: Services, who: Principal) -> list[str]:
    with services.uow(who) as uow:
        return list(
            uow.session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.user_id == who.user_id)
                .order_by(AuditEvent.created_at)
            )
        )


def test_sessions_read_like_devices_with_this_one_first(services: Services) -> None:
    user = factories.account(services, "devices@example.com")
    phone = services.sign_in.login("devices@example.com", PW, user_agent=SAFARI_IPHONE)
    services.clock.advance(hours=2)  # type: ignore[attr-defined]
    here = services.sign_in.login("devices@example.com", PW, user_agent=CHROME_LINUX)
    services.clock.advance(minutes=5)  # type: ignore[attr-defined]
    views = services.sessions.list_active(user, here.session_id)
    assert [v.summary for v in views] == [
        "Chrome on Linux · 5 minutes ago · this device",
        "Safari on iOS · 2 hours ago",
    ]
    assert views[1].session_id == phone.session_id


def test_sign_out_all_other_sessions_keeps_this_one(services: Services) -> None:
    user = factories.account(services, "others@example.com")
    here = services.sign_in.login("others@example.com", PW, user_agent=CHROME_LINUX)
    phone = services.sign_in.login("others@example.com", PW, user_agent=SAFARI_IPHONE)
    laptop = services.sign_in.login("others@example.com", PW, user_agent=FIREFOX_WINDOWS)
    assert services.sessions.sign_out_others(user, here.session_id) == 2
    assert services.sessions.authenticate(here.access_token) == user
    for gone in (phone, laptop):
        try:
            services.sessions.authenticate(gone.access_token)
        except TokenError:
            pass
        else:
            raise AssertionError("another session survived 'sign out all other sessions'")
    assert [v.summary for v in services.sessions.list_active(user, here.session_id)] == [
        "Chrome on Linux · just now · this device"
    ]
    assert _actions(services, user)[-1] == "sessions.revoked_others"


def test_one_audit_row_per_sign_in_even_when_the_browser_collects_its_cookie(
    services: Services,
) -> None:
    user = factories.account(services, "once@example.com")
    before = len(_actions(services, user))
    issued = services.sign_in.login(
        "once@example.com", PW, ip="198.51.100.7", user_agent=CHROME_LINUX
    )
    ticket = services.sessions.browser_ticket(issued.principal, issued.session_id)
    services.sessions.redeem_browser_ticket(ticket, ip="198.51.100.7")
    assert _actions(services, user)[before:] == ["login.success"]
    with services.uow(user) as uow:
        row = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.user_id == user.user_id, AuditEvent.action == "login.success"
            )
        ).one()
        assert row.target == f"session:{issued.session_id}"
        assert row.details == {"user_agent": CHROME_LINUX}


def test_signing_in_again_in_the_same_browser_ends_the_session_it_replaces(
    services: Services,
) -> None:
    user = factories.account(services, "again@example.com")
    first = services.sign_in.login("again@example.com", PW, user_agent=CHROME_LINUX)
    cookie = services.sessions.redeem_browser_ticket(
        services.sessions.browser_ticket(user, first.session_id)
    )
    second = services.sign_in.login("again@example.com", PW, user_agent=CHROME_LINUX)
    services.sessions.redeem_browser_ticket(
        services.sessions.browser_ticket(user, second.session_id), replaces=cookie.token
    )
    assert [v.session_id for v in services.sessions.list_active(user)] == [second.session_id]
    assert not services.sessions.browser_token_live(cookie.token)
