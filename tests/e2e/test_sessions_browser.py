"""Sessions in a real browser: the refresh cookie survives reloads and rotates, logout sticks,
server-side revocation ends the browser session, a replayed cookie kills the session, quick
reloads (a rotated cookie not stored yet) do not, admin pages stay out of reach for users."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import LiveApp, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

PW = factories.PASSWORD


@pytest.fixture(autouse=True)
def people(live_services: Services) -> None:
    """Ada the administrator and Uma, a user (both sign in with ``PW``)."""
    admin = factories.admin_account(live_services, "admin@example.com", name="Ada")
    factories.account(live_services, "user@example.com", name="Uma", actor=admin)


def refresh_cookie(page: Any) -> str | None:
    for cookie in page.context.cookies():
        if cookie["name"] == "jarvis_refresh":
            value: str = cookie["value"]
            assert cookie["sameSite"] == "Strict"
            return value
    return None


def wait_for_cookie(page: Any, not_value: str | None = None) -> str:
    for _ in range(100):
        value = refresh_cookie(page)
        if value and value != not_value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError("the refresh cookie was not written")


def test_reload_keeps_the_session_rotates_the_cookie_and_logout_sticks(
    live: LiveApp, live_services: Services, page: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    first = wait_for_cookie(page)
    assert len(first) == 43

    page.reload()
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()
    second = wait_for_cookie(page, not_value=first)  # rotated on use
    assert second != first

    page.reload()
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()
    third = wait_for_cookie(page, not_value=second)

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    for _ in range(50):
        if refresh_cookie(page) is None:
            break
        page.wait_for_timeout(100)
    assert refresh_cookie(page) is None
    page.reload()
    wait_for_app(page)
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Welcome, Uma").count() == 0
    # Even a copy of the last cookie is useless now: the session was revoked on the server.
    page.context.add_cookies([{"name": "jarvis_refresh", "value": third, "url": live.url}])
    page.reload()
    wait_for_app(page)
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Welcome, Uma").count() == 0


def test_a_replayed_cookie_revokes_the_session_everywhere(
    live: LiveApp, live_services: Services, page: Any, browser: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    stolen = wait_for_cookie(page)
    page.reload()  # the real user comes back: the token rotates
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()
    wait_for_cookie(page, not_value=stolen)

    thief = browser.new_context()
    try:
        thief.add_cookies([{"name": "jarvis_refresh", "value": stolen, "url": live.url}])
        other = thief.new_page()
        other.goto(live.url)
        wait_for_app(other)
        other.get_by_role("button", name="Sign in").wait_for()
        assert other.get_by_text("Welcome, Uma").count() == 0
    finally:
        thief.close()
    # The replay revoked the whole family: the real user's tab ends at its next interaction.
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign in").wait_for()
    admin = live_services.sign_in.check_credentials("admin@example.com", PW)
    assert live_services.admin.audit_log(admin, action="session.refresh_reuse")


# While localStorage "jarvisHoldCookie" is set, writing the refresh cookie fails in this page:
# the reload was faster than the browser storing (and acknowledging) the rotated cookie.
# Decided once per page load: a page loaded while the flag is set never stores the cookie,
# even after the flag is cleared for the next load (so it cannot win the race late).
HOLD_COOKIE_WRITES = """
(() => {
  const hold = Boolean(localStorage.getItem("jarvisHoldCookie"));
  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  Object.defineProperty(Document.prototype, "cookie", {
    configurable: true,
    get() { return cookie.get.call(this); },
    set(value) {
      if (String(value).startsWith("jarvis_refresh=") && hold) {
        throw new Error("test: cookie write held back");
      }
      cookie.set.call(this, value);
    },
  });
})();
"""


def audit_actions(services: Services, action: str) -> list[Any]:
    admin = services.sign_in.check_credentials("admin@example.com", PW)
    return services.admin.audit_log(admin, action=action)


def test_two_quick_reloads_keep_the_session(
    live: LiveApp, live_services: Services, page: Any
) -> None:
    page.add_init_script(HOLD_COOKIE_WRITES)
    sign_in(page, live.url, "user@example.com")
    first = wait_for_cookie(page)

    # Reload 1 rotates the token on the server, but the browser never stores the new cookie...
    page.evaluate("() => localStorage.setItem('jarvisHoldCookie', '1')")
    page.reload()
    wait_for_app(page)
    page.get_by_text("Signing you in").wait_for()
    assert refresh_cookie(page) == first
    # ...because reload 2 comes first and presents the same (rotated) cookie again.
    page.evaluate("() => localStorage.removeItem('jarvisHoldCookie')")
    page.reload()
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()
    second = wait_for_cookie(page, not_value=first)

    # The same with real reloads in quick succession, then a normal one.
    page.reload(wait_until="commit")
    page.goto(live.url)
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()
    third = wait_for_cookie(page, not_value=second)
    page.reload()
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()
    wait_for_cookie(page, not_value=third)
    page.get_by_role("link", name="Account").click()
    page.get_by_text("Active sessions").wait_for()
    assert audit_actions(live_services, "session.refresh_reuse") == []
    assert audit_actions(live_services, "session.refresh_retry")


# Presents the cookie the page was loaded with, then - once the app's connection is open -
# stores a fresh one, as another tab winning a refresh race would.
SWAP_COOKIE_AFTER_CONNECT = """
(() => {
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener("open", () => {
      document.cookie = "jarvis_refresh=%s; Path=/; SameSite=Strict";
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


def test_a_refused_cookie_does_not_wipe_a_newer_one(
    live: LiveApp, live_services: Services, page: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    fresh = wait_for_cookie(page)
    page.context.add_cookies(
        [{"name": "jarvis_refresh", "value": secrets.token_urlsafe(32), "url": live.url}]
    )
    loser = page.context.new_page()
    loser.add_init_script(SWAP_COOKIE_AFTER_CONNECT % fresh)
    loser.goto(live.url)  # its cookie is refused
    wait_for_app(loser)
    loser.get_by_role("button", name="Sign in").wait_for()
    loser.wait_for_timeout(1000)  # the refused tab's cookie writer has run by now
    assert refresh_cookie(page) == fresh  # it did not delete the newer cookie
    loser.close()
    page.reload()
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()


def test_revoking_on_the_server_ends_the_browser_session(
    live: LiveApp, live_services: Services, page: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    user = live_services.sign_in.check_credentials("user@example.com", PW)
    live_services.sessions.sign_out_everywhere(user)
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.get_by_text("Your session has ended").wait_for()


def test_a_user_cannot_open_admin_pages_by_url(
    live: LiveApp, live_services: Services, page: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    wait_for_cookie(page)
    for path in ("/admin-users", "/admin-audit"):
        page.goto(live.url + path)
        wait_for_app(page)
        page.get_by_text("Welcome, Uma").wait_for()  # still signed in, on the home page
        assert page.get_by_role("heading", name="Users").count() == 0
        assert page.get_by_role("heading", name="Audit log").count() == 0
        assert page.get_by_text("admin@example.com").count() == 0
    assert page.get_by_role("link", name="Audit log").count() == 0


def test_two_tabs_share_one_session(live: LiveApp, live_services: Services, page: Any) -> None:
    sign_in(page, live.url, "user@example.com")
    first = wait_for_cookie(page)
    second_tab = page.context.new_page()
    second_tab.goto(live.url)  # signs in from the cookie and rotates it
    wait_for_app(second_tab)
    second_tab.get_by_text("Welcome, Uma").wait_for()
    wait_for_cookie(second_tab, not_value=first)
    # The first tab is not thrown out by the other tab's rotation...
    page.get_by_role("link", name="Account").click()
    page.get_by_text("Active sessions").wait_for()
    assert page.get_by_role("button", name="Sign in").count() == 0
    # ...and a reload of it uses the newest cookie.
    page.reload()
    wait_for_app(page)
    page.get_by_text("Active sessions").wait_for()
    # Logging out in one tab ends the other at its next interaction.
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    second_tab.get_by_role("link", name="Account").click()
    second_tab.get_by_role("button", name="Sign in").wait_for()
