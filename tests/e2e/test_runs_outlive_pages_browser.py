"""A chat answer belongs to the server, not to the page: in a real browser, an answer from a slow
streaming model keeps growing while the user visits another page, survives a reload, and is
stopped from a second tab."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest
from argon2 import PasswordHasher

from jarvis.bootstrap import build_services
from jarvis.config import Settings
from tests.e2e.conftest import ask, fill, go_to, wait_for_app
from tests.e2e.test_chat_stop_browser import SlowModel

pytestmark = pytest.mark.e2e

EMAIL = "survivor@example.com"
PASSWORD = "a long enough passphrase"
WORDS = 30  # one every 0.3 s: about 9 s per answer
LONG = 300  # the answer stopped from a second tab: 90 s, however slow that tab is to open


class ShortSlowModel(SlowModel):
    words = WORDS

    def words_for(self, body: bytes) -> int:
        return LONG if b"one more story" in body else WORDS


@pytest.fixture
def slow_model() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ShortSlowModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def last_word(page) -> int:  # type: ignore[no-untyped-def]
    """The highest ``wordN`` of the newest answer on the page (-1 when none)."""
    newest = page.locator("[data-testid='stChatMessage']").last.inner_text()
    found = re.findall(r"word(\d+)", newest)
    return max((int(n) for n in found), default=-1)


def wait_for_word(page, n: int, timeout: float = 30_000) -> None:  # type: ignore[no-untyped-def]
    page.get_by_text(f"word{n} ", exact=False).first.wait_for(timeout=timeout)


def test_an_answer_outlives_navigation_reloads_and_is_stopped_from_another_tab(
    live_app: str, live_settings: Settings, slow_model: str, page
) -> None:  # type: ignore[no-untyped-def]
    services = build_services(
        live_settings, hasher=PasswordHasher(memory_cost=1024, time_cost=1), background=False
    )
    try:
        user = services.accounts.register(EMAIL, PASSWORD, "Survivor")
        services.secrets.create(user, "openai_compatible", None, "sk-local", base_url=slow_model)
        conv = services.conversations.create(
            user, provider="openai_compatible", model="slow", title="Long stories"
        )
    finally:
        services.engine.dispose()
    chat_url = f"{live_app}/chat?c={conv.id}"

    page.set_default_timeout(60_000)
    page.goto(live_app)
    wait_for_app(page)
    fill(page, "Email", EMAIL)
    fill(page, "Password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Welcome,").wait_for()

    # 1. Ask, then visit Usage while the answer streams, and come back: it kept growing.
    page.goto(chat_url)
    wait_for_app(page)
    ask(page, "tell me a long story")
    wait_for_word(page, 2)
    go_to(page, "Usage")
    page.get_by_text("Usage", exact=True).first.wait_for()
    page.wait_for_timeout(2_000)
    page.get_by_role("link", name="Chat").click()
    wait_for_word(page, 12)  # written while the user was away, or growing in front of them
    seen = last_word(page)
    wait_for_word(page, seen + 2)  # and still growing here
    wait_for_word(page, WORDS - 1)  # then complete
    page.get_by_role("button", name="Stop").wait_for(state="detached", timeout=15_000)
    assert page.get_by_text("Stopped.").count() == 0

    # 2. Reload mid-answer: the same answer comes back, growing, then complete.
    ask(page, "another story please")
    page.wait_for_timeout(1_500)
    page.reload()
    page.get_by_text("another story please").first.wait_for()
    wait_for_word(page, 10)
    wait_for_word(page, WORDS - 1)
    page.get_by_role("button", name="Stop").wait_for(state="detached", timeout=15_000)

    # 3. A third answer is stopped from a second tab; the first tab sees it stop.
    ask(page, "one more story")
    wait_for_word(page, 2)
    other = page.context.new_page()
    other.goto(chat_url)
    other.get_by_text("one more story").first.wait_for()
    other.get_by_role("button", name="Stop").click()
    other.get_by_text("Stopped.", exact=True).wait_for(timeout=15_000)
    page.get_by_text("Stopped.", exact=True).wait_for(timeout=15_000)
    stopped_at = last_word(page)
    assert stopped_at < LONG - 1
    page.wait_for_timeout(1_500)
    assert last_word(page) == stopped_at  # nothing more arrives
