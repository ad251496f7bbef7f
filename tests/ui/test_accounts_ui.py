"""Accounts in the app (AppTest): sessions are server-side and revocable, the account page,
admin pages only for admins, deactivated users are thrown out at their next interaction."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from jarvis.errors import TokenError
from jarvis.identity import Principal
from jarvis.ui.navigation import pages_for
from jarvis.ui.services import get_services
from jarvis.ui.session import COOKIE_OP_KEY, SESSION_KEY
from tests import factories
from tests.ui.conftest import ROOT, sign_in_as

PW = factories.PASSWORD


def admin_and_user() -> tuple[Principal, Principal]:
    services = get_services()
    admin = factories.admin_account(services, "boss@example.com", name="Boss")
    user = factories.account(services, "user@example.com", name="Uma", actor=admin)
    return admin, user


def signed_out(at: AppTest) -> bool:
    return any(t.key == "login_email" for t in at.text_input)


def test_signing_in_opens_a_server_session_and_queues_the_cookie(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    admin_and_user()
    at = new_app().run()
    at.text_input(key="login_email").input("user@example.com")
    at.text_input(key="login_password").input(PW)
    at.button[0].click()
    at = at.run()
    assert not at.exception
    assert any("Welcome, Uma" in t.value for t in at.title)
    session = at.session_state[SESSION_KEY]
    cookie = at.session_state[COOKIE_OP_KEY]
    # The browser is to post a one-time ticket to the route that sets the HttpOnly cookie...
    assert cookie["url"] == "/api/v1/auth/browser/session" and cookie["wait"]
    ticket = cookie["body"]["ticket"]
    assert len(ticket) == 43
    # ...which is worth a browser token of exactly this session, once.
    services = get_services()
    issued = services.sessions.redeem_browser_ticket(ticket)
    assert services.sessions.resume_browser(issued.token).session_id == session.session_id
    with pytest.raises(TokenError):
        services.sessions.redeem_browser_ticket(ticket)
    assert PW not in repr(session) and PW not in repr(cookie)


def test_logout_revokes_the_server_session_and_deletes_the_cookie(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    _admin, user = admin_and_user()
    at = sign_in_as(new_app(), user).run()
    assert any("Welcome, Uma" in t.value for t in at.title)
    session = at.session_state[SESSION_KEY]
    at.button(key="app_logout").click()
    at = at.run()
    assert not at.exception
    assert signed_out(at)
    # The browser asks the server to end the cookie's session and delete the cookie.
    assert at.session_state[COOKIE_OP_KEY]["url"] == "/api/v1/auth/browser/logout"
    assert get_services().sessions.list_active(user) == []
    assert session.session_id not in {
        v.session_id for v in get_services().sessions.list_active(user)
    }


def test_a_deactivated_user_is_thrown_out_at_the_next_interaction(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    admin, user = admin_and_user()
    at = sign_in_as(new_app(), user).run()
    assert any("Welcome, Uma" in t.value for t in at.title)
    get_services().admin.set_active(admin, user.user_id, False)
    at = at.run()
    assert not at.exception
    assert signed_out(at)
    assert not any("Welcome" in t.value for t in at.title)
    assert any("session has ended" in i.value for i in at.info)


def test_a_session_revoked_elsewhere_ends_here(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    _admin, user = admin_and_user()
    at = sign_in_as(new_app(), user).run()
    get_services().sessions.sign_out_everywhere(user)
    at = at.run()
    assert signed_out(at)


def test_a_non_admin_cannot_reach_admin_pages(app_settings, new_app: Callable[[], AppTest]) -> None:  # type: ignore[no-untyped-def]
    _admin, user = admin_and_user()
    assert not [p for p in pages_for("user") if p.admin_only]
    # The admin pages are not even registered in a user's navigation (so no URL reaches them).
    at = sign_in_as(new_app(), user).run()
    assert not at.exception
    for page in ("app_pages/admin_users.py", "app_pages/admin_audit.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)
    at.switch_page("app_pages/account.py")  # a page users do have
    assert [t.value for t in at.run().title] == ["Account"]
    # The page script itself refuses too (guard), for both admin pages.
    for page in ("admin_users.py", "admin_audit.py"):
        direct = AppTest.from_file(str(ROOT / "app_pages" / page), default_timeout=30)
        direct = sign_in_as(direct, user).run()
        assert not direct.exception
        assert any("for administrators" in e.value for e in direct.error)
        assert not direct.dataframe


def test_an_admin_manages_users(app_settings, new_app: Callable[[], AppTest]) -> None:  # type: ignore[no-untyped-def]
    admin, user = admin_and_user()
    at = sign_in_as(new_app(), admin).run()
    at.switch_page("app_pages/admin_users.py")
    at = at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Users"]
    victim = sign_in_as(new_app(), user).run()
    assert any("Welcome, Uma" in t.value for t in victim.title)
    emails = list(at.dataframe[0].value["Email"])
    assert emails == ["boss@example.com", "user@example.com"]
    at.selectbox(key="admin_users_selected").select("user@example.com")
    at = at.run()
    at.button(key="admin_users_toggle_active").click()
    at = at.run()
    assert not at.exception
    assert any("was deactivated" in s.value for s in at.success)
    # The user's open browser session ends at its next interaction.
    victim = victim.run()
    assert signed_out(victim)
    # Sign-up switch.
    assert get_services().accounts.signup_open() is False
    at.toggle(key="admin_users_signup").set_value(True)
    at = at.run()
    assert get_services().accounts.signup_open() is True


def test_admin_audit_page_filters(app_settings, new_app: Callable[[], AppTest]) -> None:  # type: ignore[no-untyped-def]
    admin, _user = admin_and_user()
    get_services().sign_in.login("user@example.com", PW)
    at = sign_in_as(new_app(), admin).run()
    at.switch_page("app_pages/admin_audit.py")
    at = at.run()
    assert not at.exception
    actions = set(at.table[0].value["Action"])
    assert {"Account created", "Signed in"} <= actions
    at.selectbox(key="admin_audit_action").select("login.success")
    at = at.run()
    table = at.table[0].value
    assert set(table["Action"]) == {"Signed in"}
    assert set(table["Who"]) == {"user@example.com"}
    assert all(t.startswith("session ") and len(t) == len("session ") + 8 for t in table["Target"])


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_account_page_sign_out_all_other_sessions(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    _admin, user = admin_and_user()
    phone = get_services().sign_in.login("user@example.com", PW, user_agent=IPHONE)
    at = sign_in_as(new_app(), user).run()
    at.switch_page("app_pages/account.py")
    at = at.run()
    assert not at.button(key="account_sign_out_others").disabled
    at.button(key="account_sign_out_others").click()
    at = at.run()
    assert not at.exception
    assert any("Signed out 1 other session." in s.value for s in at.success)
    assert at.button(key="account_sign_out_others").disabled
    assert [t.value for t in at.title] == ["Account"]  # this one stays signed in
    assert [v.current for v in get_services().sessions.list_active(user)] == [False]
    assert phone.session_id not in {v.session_id for v in get_services().sessions.list_active(user)}


def test_account_page_change_password_sessions_and_sign_out_everywhere(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    _admin, user = admin_and_user()
    elsewhere = get_services().sign_in.login("user@example.com", PW, user_agent=IPHONE)
    at = sign_in_as(new_app(), user).run()
    at.switch_page("app_pages/account.py")
    at = at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Account"]
    texts = " ".join(m.value for m in at.markdown)
    assert "An unknown browser · just now · this device" in texts  # AppTest sends no agent
    assert "Safari on iOS · just now" in texts

    # Sign the phone out from here.
    at.button(key=f"account_revoke_{elsewhere.session_id.hex}").click()
    at = at.run()
    assert any("signed out" in s.value for s in at.success)
    assert "Safari on iOS" not in " ".join(m.value for m in at.markdown)

    # Change password: wrong current password first.
    again = get_services().sign_in.login("user@example.com", PW, user_agent="Tablet")
    at.text_input(key="account_current_password").input("not my password")
    at.text_input(key="account_new_password").input("brand new passphrase")
    at.text_input(key="account_confirm_password").input("brand new passphrase")
    at = _submit(at, "account_password_form")
    assert any("not correct" in e.value for e in at.error)
    at.text_input(key="account_current_password").input(PW)
    at.text_input(key="account_new_password").input("brand new passphrase")
    at.text_input(key="account_confirm_password").input("brand new passphrase")
    at = _submit(at, "account_password_form")
    assert not at.exception
    assert any("Password changed. 1 other session signed out." in s.value for s in at.success)
    assert (
        get_services().sign_in.check_credentials("user@example.com", "brand new passphrase") == user
    )
    assert [v.user_agent for v in get_services().sessions.list_active(user)] == ["unknown device"]
    assert again.session_id not in {v.session_id for v in get_services().sessions.list_active(user)}
    # Still signed in here.
    assert [t.value for t in at.title] == ["Account"]

    at.button(key="account_sign_out_everywhere").click()
    at = at.run()
    assert signed_out(at)
    assert get_services().sessions.list_active(user) == []


def _submit(at: AppTest, form_key: str) -> AppTest:
    for button in at.button:
        if button.proto.is_form_submitter and button.proto.form_id == form_key:
            button.click()
            return at.run()
    raise AssertionError(f"no submit button in form {form_key}")


def test_a_locked_out_user_sees_when_to_try_again(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    admin_and_user()
    at = new_app().run()
    at.text_input(key="login_email").input("user@example.com")
    messages = []
    for _ in range(get_services().sign_in.policy.account_threshold + 1):
        at.text_input(key="login_password").input("wrong password 1")
        at.button[0].click()
        at = at.run()
        messages.append([e.value for e in at.error])
    assert not at.exception
    assert messages[0] == ["Invalid email or password."]
    assert len(messages[-1]) == 1
    assert re.fullmatch(
        r"Too many failed sign-in attempts\. Try again in \d+ seconds\.", messages[-1][0]
    )
    # The right password does not get in while locked.
    at.text_input(key="login_password").input(PW)
    at.button[0].click()
    at = at.run()
    assert signed_out(at)
    assert any("Try again in" in e.value for e in at.error)


_IMAGE = re.compile(r"(?<!\\)!\[")


def test_names_and_devices_chosen_by_others_render_as_plain_text(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    # Anyone who can sign up picks their display name; anyone with a password picks the
    # user agent shown on the account page. Markdown there must not become an image the
    # viewer's browser fetches (or a link dressed up as something else).
    admin, _user = admin_and_user()
    lure = "![x](https://attacker.example/p.png) [Verify](https://attacker.example)"
    factories.account(get_services(), "eve@example.com", name=lure, actor=admin)
    get_services().sign_in.login("boss@example.com", PW, user_agent=lure)
    at = sign_in_as(new_app(), admin).run()
    at.switch_page("app_pages/admin_users.py")
    at = at.run()
    at.selectbox(key="admin_users_selected").select("eve@example.com")
    at = at.run()
    captions = [c.value for c in at.caption]
    assert any("attacker" in c for c in captions)
    assert not any(_IMAGE.search(c) or "](" in c for c in captions)

    at.switch_page("app_pages/account.py")
    at = at.run()
    # The session reads as a device; the raw user agent is only in the tooltip, escaped.
    assert any("An unknown browser" in m.value for m in at.markdown)
    shown = [m.value for m in (*at.markdown, *at.caption) if "attacker" in m.value]
    shown += [c.proto.help for c in at.caption if "attacker" in c.proto.help]
    assert shown
    assert not any(_IMAGE.search(s) or "](" in s for s in shown)
