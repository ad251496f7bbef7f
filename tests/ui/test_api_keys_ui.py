"""API keys on the Account page (AppTest): create one (shown once, in a code block), see it
listed by name and prefix (never the key), revoke it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from jarvis.errors import TokenError
from jarvis.ui.services import get_services
from tests import factories
from tests.ui.conftest import open_page

PAGE = "app_pages/account.py"


def _submit(at: AppTest, form_key: str) -> AppTest:
    for button in at.button:
        if button.proto.is_form_submitter and button.proto.form_id == form_key:
            button.click()
            return at.run()
    raise AssertionError(f"no submit button in form {form_key}")


def _page_text(at: AppTest) -> str:
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.success, *at.info])


def test_create_shows_the_key_once_then_lists_and_revokes_it(
    app_settings, new_app: Callable[[], AppTest]
) -> None:  # type: ignore[no-untyped-def]
    services = get_services()
    admin = factories.admin_account(services, "boss@example.com", name="Boss")
    user = factories.account(services, "keys@example.com", name="Kim", actor=admin)
    at = open_page(new_app, PAGE, user)
    assert "No API keys yet." in _page_text(at)

    at.text_input(key="account_api_key_name").input("my *laptop*")
    at.selectbox(key="account_api_key_expiry").select("30 days")
    at = _submit(at, "account_api_key_form")
    assert not at.exception
    codes = [c.value for c in at.code]
    assert len(codes) == 1 and codes[0].startswith("jrv_")
    secret = codes[0]
    assert any("only this once" in w.value for w in at.warning)
    assert services.api_keys.authenticate(secret).user_id == user.user_id
    (view,) = services.api_keys.list(user)
    assert view.name == "my *laptop*" and view.expires_at is not None
    text = _page_text(at)
    assert view.prefix in text and "my \\*laptop\\*" in text  # the name is not markdown
    assert secret not in text

    at = at.run()  # any next run: the key is gone from the page for good
    assert not at.exception
    assert not at.code
    assert view.prefix in _page_text(at)

    at.button(key=f"account_api_key_revoke_{view.id.hex}").click()
    at = at.run()
    assert not at.exception
    assert any("revoked" in s.value for s in at.success)
    with pytest.raises(TokenError):
        services.api_keys.authenticate(secret)
    assert "· revoked" in _page_text(at)
    assert not [b for b in at.button if b.key == f"account_api_key_revoke_{view.id.hex}"]


def test_a_bad_name_is_shown_not_raised(app_settings, new_app: Callable[[], AppTest]) -> None:  # type: ignore[no-untyped-def]
    services = get_services()
    admin = factories.admin_account(services, "boss@example.com", name="Boss")
    user = factories.account(services, "keys@example.com", name="Kim", actor=admin)
    at = open_page(new_app, PAGE, user)
    at = _submit(at, "account_api_key_form")  # no name
    assert not at.exception
    assert any("name" in e.value for e in at.error)
    assert not at.code
    assert services.api_keys.list(user) == []
