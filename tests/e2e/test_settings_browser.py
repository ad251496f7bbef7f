"""Settings and account pages in a real browser (issue 15, items 9-13), as a user sees them:
the Secrets page's "Test" button, account sessions, the admin audit log and budget overrides,
memory search and sources, and the Home start page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import fill, go_to, sign_in, wait_for_app, wait_for_empty_field
from tests.llm_wire_server import WireServer

pytestmark = pytest.mark.e2e

ADMIN = "ada@example.com"
USER = "uma@example.com"


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture(autouse=True)
def patient(page: Any) -> None:
    """A first page load imports the SDKs and loads models: slow on a busy 2-core machine."""
    page.context.set_default_timeout(60_000)


def _main_width(page: Any) -> float:
    box = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
    assert box is not None
    return float(box["width"])


def test_secrets_test_button_says_whether_a_key_works(
    live_app: str, live_services: Services, page: Any, wire: WireServer
) -> None:
    factories.admin_account(live_services, ADMIN, name="Ada")
    wire.models([f"llama-{i}" for i in range(37)], key="local-key-1234")
    port = wire.url.rsplit(":", 1)[1]
    sign_in(page, live_app, ADMIN)
    page.get_by_role("link", name="Secrets").click()
    page.get_by_role("heading", name="Secrets", exact=True).wait_for()
    wait_for_app(page)

    # An OpenAI-compatible server (the wire server, allowed by the test allow-list).
    page.get_by_label("Provider").click()
    page.get_by_role("option", name="OpenAI-compatible (Ollama, vLLM, ...)").click()
    fill(page, "Name", "local")
    fill(page, "Secret value", "local-key-1234")
    fill(page, "Base URL (OpenAI-compatible and custom only)", wire.url + "/v1")
    page.get_by_role("button", name="Save secret").click()
    page.get_by_text("Saved the OpenAI-compatible (Ollama, vLLM, ...) secret “local”").wait_for()
    wait_for_app(page)
    # The form is ready for the next key: what was typed is gone from the page.
    wait_for_empty_field(page, "Secret value")
    assert page.get_by_label("Name", exact=True).input_value() == ""

    # The provider takes its time: while the page waits, the run after the "Saved" message
    # shows each element once (no stale copy of the secret's card beside the new one).
    wire.models([f"llama-{i}" for i in range(37)], key="local-key-1234", delay=3.0)
    page.get_by_role("button", name="Test").click()
    page.get_by_text("Asking the provider…").wait_for()
    assert page.get_by_role("button", name="Test").count() == 1
    assert page.get_by_role("button", name="Save secret").count() == 1
    page.get_by_text("Works — 37 models available.").wait_for()
    wait_for_app(page)
    assert wire.requests[-1].headers["authorization"] == "Bearer local-key-1234"

    # The server stops accepting that key: the same button says so, without the key.
    wire.models(["llama-0"], key="another-key")
    page.get_by_role("button", name="Test").click()
    page.get_by_text(
        f"Rejected by the OpenAI-compatible server at 127.0.0.1:{port}: the key is not valid (401)."
    ).wait_for()
    wait_for_app(page)
    assert page.get_by_text("Works — 37 models available.").count() == 0
    assert "local-key-1234" not in page.content()

    # The table of secrets fits the page (no column pushed out of sight).
    table = page.locator("[data-testid='stDataFrame']").first.bounding_box()
    assert table is not None and table["width"] <= _main_width(page) + 1

    # Messages name providers with the right article.
    page.get_by_label("Provider").click()
    page.get_by_role("option", name="OpenAI", exact=True).click()
    for said in (
        "Saved the OpenAI secret “work”",
        'You already have an OpenAI secret named "work".',
    ):
        fill(page, "Name", "work")
        fill(page, "Secret value", "sk-proj-" + "Br0wserTestKey0123456789" + "Lm4X")
        page.get_by_role("button", name="Save secret").click()
        page.get_by_text(said).wait_for()
        wait_for_app(page)


def test_account_sessions_read_as_devices_and_sign_out_all_others(
    live_app: str, live_services: Services, page: Any, browser: Any
) -> None:
    admin = factories.admin_account(live_services, ADMIN, name="Ada")
    uma = factories.account(live_services, USER, name="Uma", actor=admin)
    sign_in(page, live_app, USER)
    other_context = browser.new_context(viewport={"width": 1400, "height": 1000})
    other_context.set_default_timeout(20_000)
    try:
        other = other_context.new_page()
        sign_in(other, live_app, USER)
        other.get_by_role("link", name="Account").click()
        wait_for_app(other)
        other.get_by_text("Chrome on Linux · just now · this device").wait_for()
        # The first browser is listed too, as another Chrome on Linux, without "this device".
        expect(other.get_by_text("Chrome on Linux · just now", exact=True)).to_have_count(1)
        other.get_by_role("button", name="Sign out all other sessions").click()
        other.get_by_text("Signed out 1 other session.").wait_for()
        wait_for_app(other)
        # The list below the message may still be the last run's for a moment: wait for it.
        expect(other.get_by_text("Chrome on Linux · just now", exact=True)).to_have_count(0)
        expect(other.get_by_role("button", name="Sign out all other sessions")).to_be_disabled()

        # The first browser is signed out at its next load; the second stays signed in.
        page.reload()
        wait_for_app(page)
        page.get_by_role("button", name="Sign in").wait_for()
        other.reload()
        wait_for_app(other)
        other.get_by_text("Chrome on Linux · just now · this device").wait_for()
    finally:
        other_context.close()

    # Each of the two sign-ins left exactly one audit row.
    events = live_services.admin.audit_log(admin, user_id=uma.user_id, limit=50)
    assert sorted(e.action for e in events) == [
        "login.success",
        "login.success",
        "sessions.revoked_others",
        "user.registered",
    ]


def test_admin_audit_reads_as_words_and_an_untouched_budget_override_blocks_nobody(
    live_app: str, live_services: Services, page: Any
) -> None:
    admin = factories.admin_account(live_services, ADMIN, name="Ada")
    uma = factories.account(live_services, USER, name="Uma", actor=admin)
    sign_in(page, live_app, ADMIN)

    page.get_by_role("link", name="Audit log").click()
    page.get_by_role("heading", name="Audit log").wait_for()
    wait_for_app(page)
    table = page.locator("[data-testid='stTable']")
    table.wait_for()
    # One row for this browser sign-in, in words, with the browser named.
    signed_in = table.locator("tr", has_text="Signed in")
    assert signed_in.count() == 1
    row = signed_in.first.inner_text()
    assert "browser: Chrome on Linux" in row and ADMIN in row and "session " in row
    assert "Account created" in table.inner_text()
    assert "{" not in table.inner_text()  # no raw JSON
    box = table.bounding_box()
    assert box is not None and box["width"] <= _main_width(page) + 1

    # Budgets: a user without an override reads "default", with the amount, and an empty
    # override field (saving it as it comes keeps the default: tests/ui/test_usage_pages.py).
    go_to(page, "Prices & budgets")
    wait_for_app(page)
    page.get_by_role("tab", name="Budgets").click()
    page.get_by_text("Empty means no override: the user has the default").wait_for()
    field = page.get_by_role("textbox", name="Monthly budget override (USD)")
    assert field.input_value() == ""
    status = live_services.usage.budget_status(uma)
    assert status.source != "user" and not status.exceeded and status.budget_usd > 0


def test_home_and_memory_lead_to_the_conversation(
    live_app: str, live_services: Services, page: Any
) -> None:
    admin = factories.admin_account(live_services, ADMIN, name="Ada")
    uma = factories.account(live_services, USER, name="Uma", actor=admin)
    chat = live_services.conversations.create_default(uma, title="Holiday plans")
    live_services.runs.start(uma, chat.id, "remember that the ferry leaves at 7")
    sign_in(page, live_app, USER)

    # Home: this month's spend against the budget, quick links, recent conversations.
    page.get_by_role("heading", name="This month").wait_for()
    page.get_by_text("$0.00 of $").wait_for()
    assert page.get_by_text("PostgreSQL").count() == 0  # the database details are admin-only
    assert page.get_by_role("button", name="New chat").is_visible()
    main = page.locator("[data-testid='stMain']")
    for name in ("Usage", "Memory", "Knowledge graph"):
        assert main.get_by_role("link", name=name).count() == 1
    main.get_by_role("link", name="Holiday plans").click()
    page.wait_for_url(f"**/chat?c={chat.id}")
    wait_for_app(page)
    page.get_by_text("ferry leaves at 7").first.wait_for()

    # Memory: the memory names its conversation and links to it; unrelated searches list none.
    page.get_by_role("link", name="Memory").first.click()
    page.get_by_role("heading", name="Memory", exact=True).wait_for()
    wait_for_app(page)
    assert page.get_by_label("Source (run id)").count() == 0
    fill(page, "Search your memories", "what is my sister called")
    wait_for_app(page)
    page.get_by_text("No memory matches.").wait_for()
    fill(page, "Search your memories", "when does the boat depart")
    wait_for_app(page)
    page.get_by_text("similarity 0.").first.wait_for()
    page.get_by_role("tab", name="Add").click()
    assert page.get_by_text("run id", exact=False).count() == 0
    page.get_by_role("tab", name="Search").click()
    main.get_by_role("link", name="From: Holiday plans").first.click()
    page.wait_for_url(f"**/chat?c={chat.id}")
