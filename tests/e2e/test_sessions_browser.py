"""Sessions in a real browser against the one-process server (UI + ``/api/v1``): the session
cookie is set by a server response, HttpOnly (no script sees it); reloads, a second tab, Back
and a restored browser stay signed in; logout sticks and the old cookie is worthless after it;
server-side revocation ends the browser session; a refused cookie does not wipe a live one;
admin pages stay out of reach for users."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import LiveApp, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

PW = factories.PASSWORD
COOKIE = "jarvis_session"


@pytest.fixture(scope="module")
def live(shared_live: LiveApp) -> LiveApp:
    """One app for these tests: each signs in afresh in a new browser context."""
    return shared_live


@pytest.fixture(scope="module", autouse=True)
def people(shared_services: Services) -> None:
    """Ada the administrator and Uma, a user (both sign in with ``PW``)."""
    admin = factories.admin_account(shared_services, "admin@example.com", name="Ada")
    factories.account(shared_services, "user@example.com", name="Uma", actor=admin)


def session_cookie(context: Any) -> dict[str, Any] | None:
    for cookie in context.cookies():
        if cookie["name"] == COOKIE:
            return dict(cookie)
    return None


def wait_for_cookie(page: Any) -> dict[str, Any]:
    for _ in range(100):
        cookie = session_cookie(page.context)
        if cookie:
            return cookie
        page.wait_for_timeout(100)
    raise AssertionError("the session cookie was not set")


def signed_in(page: Any) -> None:
    wait_for_app(page)
    page.get_by_text("Welcome, Uma").wait_for()


def signed_out(page: Any) -> None:
    wait_for_app(page)
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Welcome, Uma").count() == 0


def test_the_cookie_is_httponly_and_survives_reloads_tabs_back_and_a_restored_browser(
    live: LiveApp, page: Any, browser: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    cookie = wait_for_cookie(page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # plain http here (Secure over https: the API tests)
    assert len(cookie["value"]) >= 43 and cookie["expires"] > 0  # persistent, not per tab
    # No script in the page can read it.
    assert COOKIE not in page.evaluate("() => document.cookie")

    # Reloads: the same cookie, not rotated, still signed in.
    for _ in range(2):
        page.reload()
        signed_in(page)
    assert session_cookie(page.context)["value"] == cookie["value"]  # type: ignore[index]

    # Quick reloads in a row cannot race (nothing is rotated). Chromium may drop a reload
    # that overtakes the previous one's navigation ("Not attached to an active page"): that
    # is the browser, as when a person presses F5 twice; what the app does next is checked.
    for _ in range(2):
        try:
            page.reload(wait_until="commit")
        except PlaywrightError as exc:
            if "Not attached to an active page" not in str(exc):
                raise
    page.goto(live.url)
    signed_in(page)

    # A second tab shares the session; the first keeps working.
    tab = page.context.new_page()
    tab.goto(live.url)
    signed_in(tab)
    page.get_by_role("link", name="Account").click()
    page.get_by_text("Active sessions").wait_for()
    assert page.get_by_role("button", name="Sign in").count() == 0

    # Back: to another page of the app, and back into the app from outside it.
    tab.goto(live.url + "/account")
    wait_for_app(tab)
    tab.get_by_text("Active sessions").wait_for()
    tab.goto("about:blank")
    tab.go_back()
    wait_for_app(tab)
    tab.get_by_text("Active sessions").wait_for()
    tab.go_back()
    signed_in(tab)
    tab.close()

    # A restored browser (a new context with the saved cookies) is signed in.
    restored = browser.new_context(storage_state=page.context.storage_state())
    try:
        other = restored.new_page()
        other.goto(live.url)
        signed_in(other)
    finally:
        restored.close()
    assert session_cookie(page.context)["value"] == cookie["value"]  # type: ignore[index]


def test_logout_sticks_and_the_old_cookie_is_worthless(
    live: LiveApp, page: Any, browser: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    old = wait_for_cookie(page)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    for _ in range(50):  # the server's answer deletes the (HttpOnly) cookie
        if session_cookie(page.context) is None:
            break
        page.wait_for_timeout(100)
    assert session_cookie(page.context) is None
    page.reload()
    signed_out(page)
    # A copy of the old cookie (kept by a thief, or a restored browser) is refused.
    copy = browser.new_context()
    try:
        copy.add_cookies([{"name": COOKIE, "value": old["value"], "url": live.url}])
        other = copy.new_page()
        other.goto(live.url)
        signed_out(other)
        other.get_by_text("Your session has ended").wait_for()
        for _ in range(50):  # and deleted by the server, since it opens nothing
            if session_cookie(copy) is None:
                break
            other.wait_for_timeout(100)
        assert session_cookie(copy) is None
    finally:
        copy.close()


def test_revoking_on_the_server_ends_the_browser_session(
    live: LiveApp, live_services: Services, page: Any
) -> None:
    sign_in(page, live.url, "user@example.com")
    wait_for_cookie(page)
    user = live_services.sign_in.check_credentials("user@example.com", PW)
    live_services.sessions.sign_out_everywhere(user)
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.get_by_text("Your session has ended").wait_for()
    page.reload()
    signed_out(page)


# Presents the cookie the page was loaded with, then - once the app's connection is open -
# puts the live cookie back, as another tab signing in meanwhile would. (A test stand-in: the
# real cookie is HttpOnly, which only the server may set.)
RESTORE_COOKIE_AFTER_CONNECT = """
(() => {
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener("open", () => {
      document.cookie = "jarvis_session=%s; Path=/; SameSite=Lax";
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


def test_a_refused_cookie_does_not_wipe_a_live_one(live: LiveApp, page: Any) -> None:
    """A tab loaded with a dead cookie asks the server to forget it; by then the browser holds
    a live one again, which the server keeps."""
    sign_in(page, live.url, "user@example.com")
    live_cookie = wait_for_cookie(page)["value"]
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": COOKIE, "value": secrets.token_urlsafe(32), "url": live.url}]
    )
    stale = page.context.new_page()
    stale.add_init_script(RESTORE_COOKIE_AFTER_CONNECT % live_cookie)
    stale.goto(live.url)  # its cookie is refused
    signed_out(stale)
    stale.wait_for_timeout(1000)  # its "forget" request has been answered by now
    assert session_cookie(page.context)["value"] == live_cookie  # type: ignore[index]
    stale.close()
    page.reload()
    signed_in(page)


def test_a_user_cannot_open_admin_pages_by_url(live: LiveApp, page: Any) -> None:
    sign_in(page, live.url, "user@example.com")
    wait_for_cookie(page)
    for path in ("/admin-users", "/admin-audit"):
        page.goto(live.url + path)
        signed_in(page)  # still signed in, on the home page
        assert page.get_by_role("heading", name="Users").count() == 0
        assert page.get_by_role("heading", name="Audit log").count() == 0
        assert page.get_by_text("admin@example.com").count() == 0
    assert page.get_by_role("link", name="Audit log").count() == 0


def test_logging_out_in_one_tab_ends_the_other(live: LiveApp, page: Any) -> None:
    sign_in(page, live.url, "user@example.com")
    wait_for_cookie(page)
    second_tab = page.context.new_page()
    second_tab.goto(live.url)
    signed_in(second_tab)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    second_tab.get_by_role("link", name="Account").click()
    second_tab.get_by_role("button", name="Sign in").wait_for()
