"""Chat: conversations on the left, the open conversation on the right; each question is an
agent run whose answer, tool steps, tokens and cost stream in as they happen."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import streamlit as st

from jarvis.errors import JarvisError
from jarvis.services.chat import events as ev
from jarvis.services.chat.views import ChatOverview, ToolCallView, TurnView
from jarvis.ui.components import show_error
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import inert_markdown

services, principal = require_user()
conversations, runs = services.conversations, services.runs

CURRENT_KEY = "chat_conversation_id"
FLASH_KEY = "chat_flash"
WARNING_KEY = "chat_budget_warning"
PICKED_KEY = "chat_model_picked"
STREAM_KEY = "chat_stream"  # (cancel, done) events of the answer this session streams
STOP_WAIT_SECONDS = 5.0
STATUS_ICONS = {
    "ok": ":material/check_circle:",
    "error": ":material/error:",
    "denied": ":material/block:",
}


def wait_for_previous_answer() -> None:
    """Stop an answer an earlier run of this page is still streaming, and wait (briefly)
    until it is recorded as stopped. Streamlit's fast reruns start the new run (the Stop
    click, any click) while the old one still streams; without this the new run reads the
    turn as running, and the page keeps saying "Still running…" after Stop."""
    pending = st.session_state.pop(STREAM_KEY, None)
    if pending is not None:
        cancel, done = pending
        cancel.set()
        done.wait(timeout=STOP_WAIT_SECONDS)


def _picked() -> None:
    """The user changed the provider or model (not just a default shown)."""
    st.session_state[PICKED_KEY] = True


# -- rendering helpers -------------------------------------------------------------------------


def cost_line(tokens: int, cost: Decimal | None, unpriced: bool) -> str:
    """``123 tokens · $0.0012`` (or ``unpriced`` when the model has no price)."""
    money = "unpriced" if unpriced or cost is None else f"${cost:.4f}"
    return f"{tokens:,} tokens · {money}"


def tool_step(call: ToolCallView | ev.ToolCallFinished | ev.ToolCallDenied, arguments: Any) -> None:
    status = "denied" if isinstance(call, ev.ToolCallDenied) else call.status
    latency = getattr(call, "latency_ms", None)
    label = inert_markdown(f"{call.tool_id} · {status}") + (
        f" · {latency} ms" if latency is not None else ""
    )
    with st.expander(label, icon=STATUS_ICONS.get(status, ":material/build:")):
        st.caption("Arguments")
        st.json(arguments or {}, expanded=True)
        if isinstance(call, ev.ToolCallDenied):
            st.warning(call.reason)
        else:
            st.caption("Result")
            st.json(call.result or {}, expanded=True)


def show_turn(turn: TurnView) -> None:
    with st.chat_message("user"):
        st.markdown(inert_markdown(turn.user_text))
    with st.chat_message("assistant"):
        for call in turn.tool_calls:
            tool_step(call, call.arguments)
        if turn.answer:
            st.markdown(inert_markdown(turn.answer))
        if turn.status == "failed":
            st.error(turn.error or "The run failed.", icon=":material/error:")
        elif turn.status == "cancelled":
            st.info("Stopped.", icon=":material/stop_circle:")
        elif turn.status == "running":
            st.info("Still running…", icon=":material/hourglass_top:")
        st.caption(f"{turn.model} · " + cost_line(turn.total_tokens, turn.cost_usd, turn.unpriced))


def stream_turn(conversation_id: uuid.UUID, prompt: str) -> bool:
    """Run one turn, rendering its events as they arrive; True when it ran to an end."""
    try:
        cancel, done = threading.Event(), threading.Event()
        events = runs.run(principal, conversation_id, prompt, cancel=cancel)
    except JarvisError as exc:
        show_error(exc)
        return False
    st.session_state[STREAM_KEY] = (cancel, done)
    with st.chat_message("user"):
        st.markdown(inert_markdown(prompt))
    with st.chat_message("assistant"):
        # Pressing Stop reruns the page: the rerun interrupts this loop, the event stream is
        # closed and the run engine records the run as cancelled (the new run waits for
        # that: wait_for_previous_answer).
        st.button("Stop", key="chat_stop", icon=":material/stop_circle:")
        steps = st.container()
        answer_box = st.empty()
        footer = st.empty()
        answer = ""
        running: dict[str, Any] = {}
        try:
            for event in events:
                if isinstance(event, ev.RunStarted) and event.budget_warning:
                    warning = (
                        f"You have used {event.budget_fraction or 0:.0%} of your monthly budget."
                    )
                    st.session_state[WARNING_KEY] = warning
                    footer.warning(warning, icon=":material/savings:")
                elif isinstance(event, ev.TextDelta):
                    answer += event.text
                    answer_box.markdown(inert_markdown(answer))
                elif isinstance(event, ev.ToolCallStarted):
                    running[event.call_id] = event.arguments
                    steps.caption(f"Calling {event.tool_id}…")
                elif isinstance(event, ev.ToolCallFinished | ev.ToolCallDenied):
                    with steps:
                        tool_step(event, running.pop(event.call_id, {}))
                elif isinstance(event, ev.UsageUpdate):
                    footer.caption(cost_line(event.total_tokens, event.cost_usd, event.unpriced))
        except JarvisError as exc:
            show_error(exc)
            return False
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            done.set()
    return True


# -- page --------------------------------------------------------------------------------------

st.title("Chat")
if flash := st.session_state.pop(FLASH_KEY, None):
    st.success(flash)
if warning := st.session_state.pop(WARNING_KEY, None):
    st.warning(warning, icon=":material/savings:")

wait_for_previous_answer()
current_id: uuid.UUID | None = st.session_state.get(CURRENT_KEY)
try:
    view: ChatOverview = conversations.overview(principal, current_id)
except JarvisError as exc:
    show_error(exc)
    st.stop()
current = view.current
choices = {c.id: c for c in view.choices}

left, right = st.columns([1, 3], gap="medium")

with left:
    st.subheader("Conversations")
    if st.button("New chat", key="chat_new", icon=":material/add:", use_container_width=True):
        st.session_state.pop(CURRENT_KEY, None)
        st.rerun()
    if not view.conversations:
        st.caption("No conversations yet.")
    for conv in view.conversations:
        selected = current is not None and conv.id == current.id
        if st.button(
            inert_markdown(conv.title),
            key=f"chat_open_{conv.id}",
            type="primary" if selected else "secondary",
            use_container_width=True,
        ):
            st.session_state[CURRENT_KEY] = conv.id
            st.rerun()
    if current is not None:
        with st.expander("Rename or delete", icon=":material/edit:"):
            title = st.text_input("Title", value=current.title, key=f"chat_title_{current.id}")
            if st.button("Rename", key="chat_rename"):
                try:
                    conversations.rename(principal, current.id, title)
                    st.session_state[FLASH_KEY] = "Conversation renamed."
                    st.rerun()
                except JarvisError as exc:
                    show_error(exc)
            confirm = st.checkbox("Yes, delete it with its history", key="chat_delete_confirm")
            if st.button("Delete conversation", key="chat_delete", disabled=not confirm):
                try:
                    conversations.delete(principal, current.id)
                    st.session_state.pop(CURRENT_KEY, None)
                    st.session_state[FLASH_KEY] = "Conversation deleted."
                    st.rerun()
                except JarvisError as exc:
                    show_error(exc)

with right:
    provider_ids = list(choices)
    wanted = current.provider if current is not None and current.provider in choices else None
    if current is not None and wanted is None:
        st.warning(
            f"This conversation used {current.provider} ({current.model}), which you have no key "
            "for any more. Pick another provider to continue it.",
            icon=":material/key_off:",
        )
    provider_col, model_col = st.columns(2)
    provider = provider_col.selectbox(
        "Provider",
        provider_ids,
        index=provider_ids.index(wanted) if wanted else 0,
        key=f"chat_provider_{current.id if current else 'new'}",
        format_func=lambda p: choices[p].label,
        on_change=_picked,
        help="Only providers you have a key for are listed (Secrets page). "
        "The offline model needs no key and calls no LLM.",
    )
    models = list(choices[provider].models)
    if current is not None and current.provider == provider and current.model not in models:
        models.insert(0, current.model or choices[provider].default_model)
    model = model_col.selectbox(
        "Model",
        models,
        index=models.index(current.model) if current is not None and current.model in models else 0,
        key=f"chat_model_{current.id if current else 'new'}_{provider}",
        accept_new_options=provider == "openai_compatible",
        on_change=_picked,
    )
    picked = st.session_state.pop(PICKED_KEY, False)
    if current is not None and picked and (provider, model) != (current.provider, current.model):
        try:
            current = conversations.set_model(principal, current.id, provider, str(model))
        except JarvisError as exc:
            show_error(exc)

    if current is None:
        st.caption("Ask anything to start a new conversation.")
    for turn in view.turns:
        show_turn(turn)

    prompt = st.chat_input("Ask Jarvis…", key="chat_input")
    if prompt:
        try:
            if current is None:
                current = conversations.create(principal, provider=provider, model=str(model))
                st.session_state[CURRENT_KEY] = current.id
        except JarvisError as exc:
            show_error(exc)
            st.stop()
        if stream_turn(current.id, prompt):
            st.rerun()
