"""In a real browser: add a secret (only its last four characters ever come back) and deny a
tool; both survive a reload."""

from __future__ import annotations

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import fill, sign_in, wait_for_app, wait_for_empty_field

pytestmark = pytest.mark.e2e

EMAIL = "vault.admin@example.com"
KEY = "sk-proj-" + "Br0wserTestKey0123456789" + "Lm4X"


def test_add_a_secret_and_deny_a_tool(live_app: str, live_services: Services, page) -> None:  # type: ignore[no-untyped-def]
    factories.admin_account(live_services, EMAIL, name="Vera")
    sign_in(page, live_app, EMAIL)
    page.get_by_text("Welcome, Vera").wait_for()

    # Secrets: add an OpenAI key (the first provider in the list).
    page.get_by_role("link", name="Secrets").click()
    page.get_by_role("heading", name="Secrets", exact=True).wait_for()
    wait_for_app(page)
    fill(page, "Name", "work")
    fill(page, "Secret value", KEY)
    page.get_by_role("button", name="Save secret").click()
    page.get_by_text("Saved the OpenAI secret “work” (••••Lm4X).").wait_for()
    wait_for_app(page)
    wait_for_empty_field(page, "Secret value")
    assert KEY not in page.content() and KEY[:-4] not in page.content()
    page.get_by_text("OpenAI · work · ••••Lm4X").wait_for()

    # Tools: deny the calculator with its toggle.
    page.get_by_role("link", name="Tools").click()
    page.get_by_role("heading", name="Tools", exact=True).wait_for()
    wait_for_app(page)
    page.get_by_text("7 of 8 tools are offered", exact=False).wait_for()
    switch = page.get_by_role("switch", name="Allow Calculator")
    assert switch.is_checked()
    switch.locator("xpath=ancestor::label").click()
    page.get_by_text("Denied Calculator.").wait_for()
    page.get_by_text("6 of 8 tools are offered", exact=False).wait_for()

    # Both survive a reload (and are really stored).
    page.reload()
    wait_for_app(page)
    page.get_by_text("6 of 8 tools are offered", exact=False).wait_for()
    assert not page.get_by_role("switch", name="Allow Calculator").is_checked()
    assert page.get_by_role("switch", name="Allow Current time").is_checked()

    principal = live_services.sign_in.check_credentials(EMAIL, factories.PASSWORD)
    assert not live_services.permissions.is_allowed(principal, "calculator")
    assert [(s.provider, s.name, s.last4) for s in live_services.secrets.list(principal)] == [
        ("openai", "work", "Lm4X")
    ]
