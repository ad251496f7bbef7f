"""The login gate: first visit creates the admin, then sign-in, pages need a user."""

from __future__ import annotations

import secrets

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from jarvis.config import get_settings
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import ROOT, sign_in_as


def create_admin(
    at: AppTest, email: str = "admin@example.com", password: str = "correct horse battery"
) -> AppTest:
    at.text_input(key="login_admin_email").input(email)
    at.text_input(key="login_admin_name").input("Ada Admin")
    at.text_input(key="login_admin_password").input(password)
    at.text_input(key="login_admin_confirm").input(password)
    at.button[0].click()
    return at.run()


def test_first_visit_offers_to_create_the_admin_and_signs_in(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at = new_app().run()
    assert not at.exception
    assert any("Create the administrator account" in s.value for s in at.subheader)
    at = create_admin(at)
    assert not at.exception
    assert any("Welcome, Ada Admin" in t.value for t in at.title)
    # Home is a start page; the database details are on the admin page "System".
    assert any(s.value == "Recent conversations" for s in at.subheader)
    assert not any(m.label == "PostgreSQL" for m in at.metric)
    at.switch_page("app_pages/admin_system.py")
    at = at.run()
    assert not at.exception
    assert any(m.label == "PostgreSQL" for m in at.metric)
    assert (
        get_services()
        .accounts.list_users(
            get_services().sign_in.check_credentials("admin@example.com", "correct horse battery")
        )[0]
        .role
        == "admin"
    )


def test_mismatched_passwords_create_nothing(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at = new_app().run()
    at.text_input(key="login_admin_email").input("a@example.com")
    at.text_input(key="login_admin_password").input("password-one")
    at.text_input(key="login_admin_confirm").input("password-two")
    at.button[0].click()
    at = at.run()
    assert any("do not match" in e.value for e in at.error)
    assert not get_services().accounts.has_users()


def test_wrong_password_is_refused_with_one_message(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    factories.admin_account(get_services(), "owner@example.com", "right password 1")
    at = new_app().run()
    at.text_input(key="login_email").input("owner@example.com")
    at.text_input(key="login_password").input("wrong password 1")
    at.button[0].click()
    at = at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Invalid email or password."]
    at.text_input(key="login_email").input("nobody@example.com")
    at.button[0].click()
    at = at.run()
    assert [e.value for e in at.error] == ["Invalid email or password."]


def test_page_script_refuses_to_render_without_a_user(app_settings) -> None:  # type: ignore[no-untyped-def]
    at = AppTest.from_file(str(ROOT / "app_pages" / "home.py"), default_timeout=30).run()
    assert not at.exception
    assert any("Please sign in" in w.value for w in at.warning)
    assert not at.title


@pytest.mark.parametrize("env", ["dev", "production"])
def test_outside_tests_a_principal_in_the_session_state_is_not_a_sign_in(
    app_settings, new_app, monkeypatch: pytest.MonkeyPatch, env: str
) -> None:  # type: ignore[no-untyped-def]
    """The test back door (``sign_in_as``) works with JARVIS_ENV=test only."""
    owner = factories.admin_account(get_services(), "owner@example.com", name="Owner")
    assert any("Welcome, Owner" in t.value for t in sign_in_as(new_app(), owner).run().title)
    get_services().sessions.sign_out_everywhere(owner)

    monkeypatch.setenv("JARVIS_ENV", env)
    if env == "production":  # production refuses the tests' predictable keys
        monkeypatch.setenv("JARVIS_MASTER_KEY", secrets.token_hex(32))
        monkeypatch.setenv("JARVIS_JWT_SECRET", secrets.token_urlsafe(48))
    get_settings.cache_clear()
    st.cache_resource.clear()
    assert get_services().settings.env == env
    at = sign_in_as(new_app(), owner).run()
    assert not at.exception
    assert any(t.key == "login_email" for t in at.text_input)  # the sign-in form
    assert not any("Welcome" in t.value for t in at.title)
    assert "jarvis_principal" not in at.session_state
    assert get_services().sessions.list_active(owner) == []
