"""Chat in a real browser with the offline model: a tool step and the cost line stream in,
and the conversation is still there after a reload."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ask, fill, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "chat.admin@example.com"
PASSWORD = "a long enough passphrase"
QUESTION = "remember that my cat is called Tom"


def test_chat_with_the_offline_model_and_find_it_after_a_reload(
    live_app: str, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    page.set_default_timeout(60_000)  # shared CI machines can be slow
    try:
        chat_and_reload(live_app, page)
    except Exception:
        page.screenshot(path=str(tmp_path / "chat-failure.png"))
        raise


def chat_and_reload(live_app: str, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(live_app)
    wait_for_app(page)
    fill(page, "Email", EMAIL)
    fill(page, "Display name", "Tess")
    fill(page, "Password (8+ characters)", PASSWORD)
    fill(page, "Repeat password", PASSWORD)
    page.get_by_role("button", name="Create admin account").click()
    page.get_by_text("Welcome, Tess").wait_for()

    page.goto(live_app + "/chat")
    wait_for_app(page)
    page.get_by_role("heading", name="Chat").wait_for()
    box = page.get_by_placeholder("Ask Jarvis…")
    box.wait_for()
    picker = page.get_by_test_id("stSelectbox").first
    shown = picker.evaluate(
        "el => el.innerText + ' ' + [...el.querySelectorAll('input')].map(i => i.value).join(' ')"
    )
    assert "offline" in shown and "deterministic" in shown, shown

    ask(page, QUESTION)
    page.get_by_text("memory_store · ok", exact=False).first.wait_for()
    page.get_by_text("tokens · $", exact=False).first.wait_for()
    page.get_by_text("Tom", exact=False).first.wait_for()

    page.reload()
    wait_for_app(page)
    conversation = page.get_by_role("button", name=QUESTION)
    conversation.wait_for()
    conversation.click()
    page.get_by_text("memory_store · ok", exact=False).first.wait_for()
    page.get_by_text("tokens · $", exact=False).first.wait_for()
