"""A new user's first minutes in a real browser: deep links are gated, the admin is created,
the session survives a reload and logout sticks."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import fill, go_to, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "first.admin@example.com"
PASSWORD = "a long enough passphrase"


def test_first_run_deep_link_admin_creation_reload_and_logout(live_app: str, page) -> None:  # type: ignore[no-untyped-def]
    # A deep link to a page on a fresh server does not bypass the login.
    page.goto(live_app + "/home")
    wait_for_app(page)
    page.get_by_text("Create the administrator account").wait_for()
    assert page.get_by_text("Welcome,").count() == 0

    fill(page, "Email", EMAIL)
    fill(page, "Display name", "Grace")
    fill(page, "Password (8+ characters)", PASSWORD)
    fill(page, "Repeat password", PASSWORD)
    page.get_by_role("button", name="Create admin account").click()
    page.get_by_text("Welcome, Grace").wait_for()
    page.get_by_text("No conversations yet. Start one with").wait_for()  # the start page
    # The database's details are on the admin's System page.
    go_to(page, "System")
    page.get_by_text("Connected as").wait_for()
    wait_for_app(page)
    go_to(page, "Home")
    page.get_by_text("Welcome, Grace").wait_for()
    wait_for_app(page)

    # A reload keeps the session.
    page.reload()
    wait_for_app(page)
    page.get_by_text("Welcome, Grace").wait_for()

    # Logout sticks, also after a reload.
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    page.reload()
    wait_for_app(page)
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.get_by_text("Welcome, Grace").count() == 0
