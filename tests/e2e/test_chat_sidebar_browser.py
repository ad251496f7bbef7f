"""The chat layout in a real browser (issue 15): a user with 150 conversations finds one through
the sidebar search and opens it; on a 390 px wide phone the composer is on screen and nothing
scrolls sideways."""

from __future__ import annotations

import time

import pytest

from jarvis.bootstrap import Services
from tests import factories
from tests.e2e.conftest import ask, sign_in, wait_for_app

pytestmark = pytest.mark.e2e

EMAIL = "busy.chatter@example.com"
WANTED = "Quarterly tax plan"


def no_sideways_scroll(page) -> None:  # type: ignore[no-untyped-def]
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.body.scrollWidth]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[1], widths


def test_find_one_of_150_conversations_and_chat_on_a_phone(
    live_app: str, live_services: Services, page, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    user = factories.admin_account(live_services, EMAIL, name="Busy")
    wanted = live_services.conversations.create_default(user, title=WANTED)
    for n in range(149):  # 150 in all; the wanted one is the oldest, far below the first page
        live_services.conversations.create_default(user, title=f"Topic number {n:03d}")
    page.set_default_timeout(60_000)
    try:
        find_and_open(live_app, page, str(wanted.id))
        chat_on_a_phone(page, tmp_path)
    except Exception:
        page.screenshot(path=str(tmp_path / "chat-sidebar-failure.png"), full_page=True)
        raise


def find_and_open(live_app: str, page, wanted_id: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, live_app, EMAIL)
    page.goto(live_app + "/chat")
    wait_for_app(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("button", name="Topic number 148").wait_for()
    sidebar.get_by_role("button", name="Show more").wait_for()  # the list is drawn to its end
    assert sidebar.get_by_role("button", name=WANTED).count() == 0  # not in the first page

    started = time.monotonic()
    search = sidebar.get_by_placeholder("Search conversations…")
    search.fill("tax")
    search.press("Enter")
    found = sidebar.get_by_role("button", name=WANTED)
    found.wait_for()
    sidebar.get_by_role("button", name="Topic number 148").wait_for(state="detached")
    found.click()
    page.wait_for_url(f"**/chat?c={wanted_id}")
    wait_for_app(page)
    assert time.monotonic() - started < 20  # seconds, not a scroll through 150 buttons
    # the empty conversation offers what Jarvis can do
    page.get_by_role("button", name="What is 12 * (3 + 4)?").wait_for()


def chat_on_a_phone(page, shots) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    wait_for_app(page)
    box = page.get_by_placeholder("Ask Jarvis…")
    box.wait_for()
    no_sideways_scroll(page)
    ask(page, "what is 12 * (3 + 4)")
    page.get_by_text("calculator · ok", exact=False).first.wait_for()
    page.get_by_test_id("stChatMessage").locator("strong", has_text="84").first.wait_for()
    box = page.get_by_placeholder("Ask Jarvis…")
    box.wait_for()
    shown = box.bounding_box()
    assert shown is not None and shown["y"] + shown["height"] <= 844, shown  # on screen
    assert shown["x"] >= 0 and shown["x"] + shown["width"] <= 390, shown
    no_sideways_scroll(page)

    # the conversation list is one tap away, and fits the phone's width
    page.get_by_test_id("stExpandSidebarButton").click()
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_placeholder("Search conversations…").wait_for()
    title = sidebar.get_by_role("button", name=WANTED)
    title.wait_for()
    page.wait_for_timeout(500)  # the sidebar slides in
    for box in (sidebar.bounding_box(), title.bounding_box()):
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    no_sideways_scroll(page)
    page.screenshot(path=str(shots / "phone-sidebar.png"))
