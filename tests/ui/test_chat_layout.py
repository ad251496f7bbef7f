"""The chat page's layout and flow (issue 15): the provider picker tells the truth, the
conversation list lives in the sidebar (search, date groups, paging, a menu per conversation),
the composer says when Jarvis is answering, failed turns can be retried, and an empty chat offers
example prompts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streamlit.testing.v1 import AppTest

from jarvis.bootstrap import build_services
from jarvis.clock import FixedClock
from jarvis.config import Settings
from jarvis.errors import ProviderError
from jarvis.identity import Principal
from jarvis.llm.base import FakeProvider
from jarvis.services.chat.listing import GROUPS
from jarvis.ui.composer import ANSWERING, PLACEHOLDER
from jarvis.ui.services import get_services
from tests.integration.chat_helpers import make_chat
from tests.ui.test_chat_page import open_chat


def sidebar_texts(at: AppTest) -> list[str]:
    """The sidebar's date groups and conversations, top to bottom, as a user reads them."""
    shown = []
    for node in at.sidebar:
        if node.type == "caption" and node.value in GROUPS:
            shown.append(str(node.value))
        elif node.type == "button" and str(node.key).startswith("chat_open_"):
            shown.append(str(node.label))
    return shown


def test_the_picker_shows_what_the_next_turn_uses(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    """A conversation whose provider lost its key: the picker shows offline, and the next
    message goes to offline (not to the old provider, failing with "no API key")."""
    at, principal = open_chat(new_app, "picker.truth@example.com")
    services = get_services()
    stale = services.conversations.create(principal, provider="anthropic", model="claude-haiku-4-5")
    at.query_params["c"] = str(stale.id)
    at = at.run()
    assert not at.exception, at.exception
    picker = at.selectbox(key=f"chat_provider_{stale.id}")
    assert picker.value == "offline"
    [warning] = [w.value for w in at.warning if "no key" in w.value]
    assert f"next message goes to **{picker.format_func(picker.value)}**" in warning, warning

    at.chat_input(key="chat_input").set_value("what is 6 * 7").run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    [turn] = services.conversations.history(principal, stale.id)
    assert (turn.status, turn.provider) == ("completed", picker.value)
    assert "42" in turn.answer
    now = services.conversations.get(principal, stale.id)
    assert now.provider == at.selectbox(key=f"chat_provider_{stale.id}").value == "offline"
    assert not any("no key" in w.value for w in at.warning)  # nothing left to warn about


def dated_conversations(settings: Settings, principal: Principal) -> dict[str, datetime]:
    """35 conversations last active at known times (a service on a fixed clock)."""
    now = datetime.now(UTC)
    clock = FixedClock(now)
    dated = build_services(settings, clock=clock, background=False, recover_runs=False)
    when = {
        "Ancient history": now - timedelta(days=40),
        "Last week's plan": now - timedelta(days=3),
        "Yesterday's notes": now - timedelta(days=1),
        "Fresh idea": now,
    }
    try:
        for n in range(31):  # older still: the list's second page
            clock.set(now - timedelta(days=60, minutes=n))
            dated.conversations.create_default(principal, title=f"Filler {n:02d}")
        for title, at in when.items():
            clock.set(at)
            dated.conversations.create_default(principal, title=title)
    finally:
        dated.engine.dispose()
    return when


def test_the_sidebar_lists_searches_groups_and_pages(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app, "sidebar@example.com")
    dated_conversations(app_settings, principal)
    at = at.run()
    assert not at.exception, at.exception

    shown = sidebar_texts(at)
    order = ["Today", "Fresh idea", "Yesterday", "Yesterday's notes", "Previous 7 days"]
    order += ["Last week's plan", "Older", "Ancient history", "Filler 00"]
    assert [t for t in shown if t in order] == order, shown
    fillers = [t for t in shown if t.startswith("Filler")]
    assert len(fillers) == 26  # 30 a page: 4 dated + 26 fillers
    assert "Filler 30" not in shown

    at.button(key="chat_more").click().run()
    assert not at.exception, at.exception
    shown = sidebar_texts(at)
    assert len([t for t in shown if t.startswith("Filler")]) == 31
    assert "Filler 30" in shown and not [b for b in at.sidebar.button if b.key == "chat_more"]

    at.text_input(key="chat_search").input("HISTORY").run()
    assert not at.exception, at.exception
    assert sidebar_texts(at) == ["Older", "Ancient history"]
    at.button(key=f"chat_open_{conv_id(principal, 'Ancient history')}").click().run()
    assert not at.exception, at.exception
    assert at.query_params["c"] == str(conv_id(principal, "Ancient history"))

    at.text_input(key="chat_search").input("no such title").run()
    assert any(c.value == "No conversations match." for c in at.sidebar.caption)


def conv_id(principal: Principal, title: str):  # type: ignore[no-untyped-def]
    [found] = [
        c for c in get_services().conversations.list(principal, query=title) if c.title == title
    ]
    return found.id


def test_delete_from_the_menu_of_another_conversation(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app, "menu@example.com")
    services = get_services()
    keep = services.conversations.create_default(principal, title="Keep me")
    drop = services.conversations.create_default(principal, title="Drop me")
    at.query_params["c"] = str(keep.id)
    at = at.run()
    at.checkbox(key=f"chat_confirm_{drop.id}").check().run()
    at.button(key=f"chat_delete_{drop.id}").click().run()
    assert not at.exception, at.exception
    assert [c.title for c in services.conversations.list(principal)] == ["Keep me"]
    assert "Drop me" not in sidebar_texts(at)
    assert at.query_params["c"] == str(keep.id)  # still open
    assert any("deleted" in s.value for s in at.success)


def test_a_failed_turn_can_be_retried(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app, "retry@example.com")
    services = get_services()
    conv = services.conversations.create(principal, provider="openai", model="gpt-4o")

    def broken(_messages, _tools):  # type: ignore[no-untyped-def]
        raise ProviderError("The provider is down.")

    failing = make_chat(services, FakeProvider(broken))
    list(failing.runs.run(principal, conv.id, "what is 2 + 2"))
    failing.shutdown()
    at.query_params["c"] = str(conv.id)
    at = at.run()
    assert not at.exception, at.exception
    [failed] = services.conversations.history(principal, conv.id)
    assert failed.status == "failed"
    assert at.button(key=f"chat_retry_{failed.run_id}").label == "Retry"

    at.button(key=f"chat_retry_{failed.run_id}").click().run()
    assert not at.exception, at.exception
    first, retried = services.conversations.history(principal, conv.id)
    assert first.run_id == failed.run_id and first.status == "failed"
    assert (retried.user_text, retried.status) == ("what is 2 + 2", "completed")
    assert "4" in retried.answer
    # the last answer can be answered again
    at.button(key="chat_regenerate").click().run()
    assert not at.exception, at.exception
    turns = services.conversations.history(principal, conv.id)
    assert [t.user_text for t in turns] == ["what is 2 + 2"] * 3
    assert turns[-1].status == "completed"


def test_an_example_prompt_starts_a_run(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app, "examples@example.com")
    labels = [b.label for b in at.button if b.key and b.key.startswith("chat_example_")]
    assert "What is 12 * (3 + 4)?" in labels and len(labels) == 4
    at.button(key="chat_example_1").click().run()
    assert not at.exception, at.exception
    [conv] = get_services().conversations.list(principal)
    [turn] = get_services().conversations.history(principal, conv.id)
    assert (turn.user_text, turn.status) == ("What is 12 * (3 + 4)?", "completed")
    assert "84" in turn.answer
    assert any(e.label.startswith("calculator · ok") for e in at.expander)
    assert not [b for b in at.button if b.key and b.key.startswith("chat_example_")]


def composer_page(busy: bool) -> None:
    """A page with only the composer (AppTest runs this function's source as the script)."""
    import streamlit as st

    from jarvis.ui.composer import composer

    st.write(f"sent: {composer(busy=busy)}")


def test_the_composer_is_disabled_while_an_answer_runs() -> None:
    """While an answer runs the page draws ``composer(busy=True)`` (the browser test follows
    a real run): the composer says so and takes nothing; otherwise it takes the message."""
    busy = AppTest.from_function(composer_page, args=(True,)).run()
    box = busy.chat_input(key="chat_input")
    assert (box.disabled, box.placeholder) == (True, ANSWERING)

    idle = AppTest.from_function(composer_page, args=(False,)).run()
    box = idle.chat_input(key="chat_input")
    assert (box.disabled, box.placeholder) == (False, PLACEHOLDER)
    idle.chat_input(key="chat_input").set_value("hello").run()
    assert any(m.value == "sent: hello" for m in idle.markdown)
