"""Chat: conversations on the left, the open conversation on the right.

Each question starts an agent run on the server; this page only follows the run's event log.
Leaving the page, reloading or opening a second tab never stops an answer: coming back shows it
still growing (or finished). Stop asks the server to stop it, wherever it runs. The open
conversation is in the URL (``?c=<id>``), so reload, bookmarks and Back return to it.
"""

from __future__ import annotations

import uuid

import streamlit as st

from jarvis.errors import JarvisError
from jarvis.services.chat.views import ChatOverview, ToolCallView, TurnView
from jarvis.ui.components import show_error
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import inert_markdown
from jarvis.ui.run_view import RunProgress, ToolStep, cost_line

services, principal = require_user()
conversations, runs = services.conversations, services.runs

FLASH_KEY = "chat_flash"
WARNING_KEY = "chat_budget_warning"
PICKED_KEY = "chat_model_picked"
QUERY_KEY = "c"
LAST_KEY = "chat_last_conversation"  # reopened when the page is reached without ?c=
#: A follower gives the page back to Streamlit this often (so clicks are never held up).
FOLLOW_SLICE_SECONDS = 30.0
STATUS_ICONS = {
    "ok": ":material/check_circle:",
    "error": ":material/error:",
    "denied": ":material/block:",
    "running": ":material/progress_activity:",
}


def _picked() -> None:
    """The user changed the provider or model (not just a default shown)."""
    st.session_state[PICKED_KEY] = True


def open_conversation(conversation_id: uuid.UUID | None) -> None:
    """Show ``conversation_id`` (None: a new chat) and put it in the URL."""
    if conversation_id is None:
        st.query_params.pop(QUERY_KEY, None)
        st.session_state.pop(LAST_KEY, None)
    else:
        st.query_params[QUERY_KEY] = str(conversation_id)
        st.session_state[LAST_KEY] = conversation_id


def conversation_in_url() -> uuid.UUID | None:
    """The conversation in the URL; coming back from another page (no ``?c=``), the one this
    browser tab had open."""
    raw = st.query_params.get(QUERY_KEY)
    if not raw:
        last: uuid.UUID | None = st.session_state.get(LAST_KEY)
        if last is not None:
            st.query_params[QUERY_KEY] = str(last)
        return last
    try:
        chosen = uuid.UUID(str(raw))
    except ValueError:
        return None
    st.session_state[LAST_KEY] = chosen
    return chosen


# -- rendering ---------------------------------------------------------------------------------


def tool_step(call: ToolCallView | ToolStep) -> None:
    label = inert_markdown(f"{call.tool_id} · {call.status}") + (
        f" · {call.latency_ms} ms" if call.latency_ms is not None else ""
    )
    with st.expander(label, icon=STATUS_ICONS.get(call.status, ":material/build:")):
        st.caption("Arguments")
        st.json(call.arguments or {}, expanded=True)
        reason = getattr(call, "reason", None)
        if reason:
            st.warning(reason)
        elif call.result is not None:
            st.caption("Result")
            st.json(call.result or {}, expanded=True)


def show_turn(turn: TurnView) -> None:
    with st.chat_message("user"):
        st.markdown(inert_markdown(turn.user_text))
    with st.chat_message("assistant"):
        for call in turn.tool_calls:
            tool_step(call)
        if turn.answer:
            st.markdown(inert_markdown(turn.answer))
        if turn.status == "failed":
            st.error(turn.error or "The run failed.", icon=":material/error:")
        elif turn.status == "cancelled":
            st.info("Stopped.", icon=":material/stop_circle:")
        st.caption(f"{turn.model} · " + cost_line(turn.total_tokens, turn.cost_usd, turn.unpriced))


def draw_progress(progress: RunProgress, model: str | None) -> None:
    for step in progress.steps:
        tool_step(step)
    if progress.answer:
        st.markdown(inert_markdown(progress.answer))
    if progress.status == "failed":
        st.error(progress.error or "The run failed.", icon=":material/error:")
    elif progress.status == "cancelled":
        st.info("Stopped.", icon=":material/stop_circle:")
    elif not progress.answer and not progress.steps:
        st.caption("Thinking…")
    line = cost_line(
        progress.total_tokens, progress.cost_usd, progress.unpriced, progress.estimated
    )
    st.caption(f"{model or ''} · {line}")
    if progress.budget_warning:
        st.warning(progress.budget_warning, icon=":material/savings:")


def follow_run(turn: TurnView) -> None:
    """Attach to the conversation's answer in progress: replay its log, then follow it live.
    The page only watches; a click elsewhere leaves the run going."""
    assert turn.run_id is not None
    with st.chat_message("user"):
        st.markdown(inert_markdown(turn.user_text))
    with st.chat_message("assistant"):
        if st.button("Stop", key="chat_stop", icon=":material/stop_circle:"):
            try:
                runs.cancel(principal, turn.run_id)
            except JarvisError as exc:
                show_error(exc)
        box = st.empty()
        progress = RunProgress()
        try:
            for logged in runs.events(principal, turn.run_id):  # replay, drawn once
                progress.apply(logged.event, logged.seq)
            with box.container():
                draw_progress(progress, turn.model)
            if progress.finished:
                return
            for followed in runs.follow(
                principal, turn.run_id, progress.last_seq, timeout=FOLLOW_SLICE_SECONDS
            ):
                progress.apply(followed.event, followed.seq)
                with box.container():
                    draw_progress(progress, turn.model)
        except JarvisError as exc:
            show_error(exc)
            return
    if progress.budget_warning:
        st.session_state[WARNING_KEY] = progress.budget_warning  # shown after the rerun
    st.rerun()  # finished (the turn now reads from history) or a slice ended: look again


# -- page --------------------------------------------------------------------------------------

st.title("Chat")
if flash := st.session_state.pop(FLASH_KEY, None):
    st.success(flash)
if warning := st.session_state.pop(WARNING_KEY, None):
    st.warning(warning, icon=":material/savings:")

try:
    view: ChatOverview = conversations.overview(principal, conversation_in_url())
except JarvisError as exc:
    show_error(exc)
    st.stop()
current = view.current
choices = {c.id: c for c in view.choices}

left, right = st.columns([1, 3], gap="medium")

with left:
    st.subheader("Conversations")
    if st.button("New chat", key="chat_new", icon=":material/add:", use_container_width=True):
        open_conversation(None)
        st.rerun()
    if not view.conversations:
        st.caption("No conversations yet.")
    for conv in view.conversations:
        selected = current is not None and conv.id == current.id
        if st.button(
            inert_markdown(conv.title),
            key=f"chat_open_{conv.id}",
            type="primary" if selected else "secondary",
            icon=":material/progress_activity:" if conv.id in view.running else None,
            help="Jarvis is answering here" if conv.id in view.running else None,
            use_container_width=True,
        ):
            open_conversation(conv.id)
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
                    open_conversation(None)
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
    active: TurnView | None = None
    for turn in view.turns:
        if turn.status == "running" and turn.run_id == view.active_run_id:
            active = turn
        else:
            show_turn(turn)

    prompt = st.chat_input("Ask Jarvis…", key="chat_input")
    if prompt:
        try:
            if current is None:
                current = conversations.create(principal, provider=provider, model=str(model))
                open_conversation(current.id)
            started = runs.start(principal, current.id, prompt)
        except JarvisError as exc:
            show_error(exc)
        else:
            if active is None:
                active = TurnView(
                    run_id=started.run_id,
                    user_text=prompt,
                    answer="",
                    status="running",
                    provider=started.provider,
                    model=started.model,
                    total_tokens=0,
                    cost_usd=None,
                    unpriced=False,
                    error=None,
                )
    if active is not None:
        follow_run(active)
