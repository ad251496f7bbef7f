"""Stop in a real browser: an answer streaming from a slow OpenAI-compatible server stops, and
the page says so (Streamlit's fast reruns start the new page run while the old one streams)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from jarvis.bootstrap import build_services
from jarvis.config import Settings
from jarvis.ui.composer import ANSWERING
from tests.e2e.conftest import ask, fill, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "stopper@example.com"
PASSWORD = "a long enough passphrase"


class SlowModel(BaseHTTPRequestHandler):
    """Chat Completions streaming one word every 0.3 s, ``words_for(request body)`` words."""

    protocol_version = "HTTP/1.1"
    words = 100

    def words_for(self, body: bytes) -> int:  # noqa: ARG002 - a subclass reads it
        return self.words

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        words = self.words_for(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        try:
            for i in range(words):
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "slow",
                    "choices": [{"index": 0, "delta": {"content": f"word{i} "}}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.3)
            self.wfile.write(b"data: [DONE]\n\n")
        except OSError:
            pass  # the client stopped reading: what Stop does

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_model() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowModel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_stop_ends_the_answer_and_the_page_says_stopped(
    live_app: str, live_settings: Settings, slow_model: str, page
) -> None:  # type: ignore[no-untyped-def]
    services = build_services(
        live_settings, hasher=PasswordHasher(memory_cost=1024, time_cost=1), background=False
    )
    try:
        user = services.accounts.register(EMAIL, PASSWORD, "Stopper")
        services.secrets.create(user, "openai_compatible", None, "sk-local", base_url=slow_model)
        conv = services.conversations.create(
            user, provider="openai_compatible", model="slow", title="Story time"
        )
    finally:
        services.engine.dispose()

    page.set_default_timeout(60_000)
    page.goto(live_app)
    wait_for_app(page)
    fill(page, "Email", EMAIL)
    fill(page, "Password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Welcome,").wait_for()
    page.goto(live_app + "/chat")
    wait_for_app(page)
    page.get_by_role("button", name="New chat").wait_for()
    page.get_by_role("button", name=conv.title).click()
    # The conversation is open once it is in the URL: asked sooner (a loaded machine, the
    # click's run not yet under way), the question went to a new chat with the offline model.
    page.wait_for_url(f"**c={conv.id}*")
    wait_for_app(page)
    ask(page, "tell me a long story")
    try:
        page.get_by_text("word2", exact=False).first.wait_for()
    except PlaywrightTimeoutError as exc:  # say what the page showed instead
        main = page.locator("body").inner_text(timeout=5_000)
        raise AssertionError(f"the answer did not stream; the page showed:\n{main}") from exc
    # while it answers, the composer says so and takes no second message; the sidebar marks it
    busy = page.get_by_placeholder(ANSWERING)
    busy.wait_for()
    assert busy.is_disabled()
    page.get_by_test_id("stSidebar").get_by_role("button", name="⏳ " + conv.title).wait_for()
    page.get_by_role("button", name="Stop").click()

    page.get_by_text("Stopped.", exact=True).wait_for(timeout=15_000)
    # What the stop removes may linger from the last run for a moment: wait for it to go.
    expect(page.get_by_text("Still running")).to_have_count(0)
    expect(page.get_by_text("word99", exact=False)).to_have_count(0)
    # the stopped turn can be sent again, and the composer takes messages again
    page.get_by_role("button", name="Retry").wait_for()
    expect(page.get_by_placeholder("Ask Jarvis…")).to_be_enabled()
