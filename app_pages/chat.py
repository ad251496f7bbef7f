"""Chat: the conversation list in the sidebar (searchable, grouped by date, paged, with a menu
per conversation to rename or delete it), the open conversation in the page and the composer
pinned to the bottom.

Each question starts an agent run on the server; this page only follows the run's event log.
Leaving the page, reloading or opening a second tab never stops an answer: coming back shows it
still growing (or finished). Stop asks the server to stop it, wherever it runs. The open
conversation is in the URL (``?c=<id>``), so reload, bookmarks and Back return to it.
"""

from __future__ import annotations

import uuid

import streamlit as st

from jarvis.errors import JarvisError
from jarvis.services.chat.runs import MAX_MESSAGE_CHARS
from jarvis.services.chat.views import ChatOverview, ConversationView, ToolCallView, TurnView
from jarvis.ui.components import show_error
from jarvis.ui.composer import composer
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import inert_markdown
from jarvis.ui.navigation import TRACE_PAGE
from jarvis.ui.run_view import RunProgress, ToolStep, budget_warning, cost_line

services, principal = require_user()
conversations, runs = services.conversations, services.runs

FLASH_KEY = "chat_flash"
WARNING_KEY = "chat_budget_warning"
PICKED_KEY = "chat_model_picked"
QUERY_KEY = "c"
ENDED_KEY = "chat_ended_run"  # a run seen ended in its log while the history said running
LAST_KEY = "chat_last_conversation"  # reopened when the page is reached without ?c=
#: A follower gives the page back to Streamlit this often (so clicks are never held up).
FOLLOW_SLICE_SECONDS = 30.0
SEARCH_KEY = "chat_search"
SHOWN_KEY = "chat_shown"  # how many conversations the sidebar lists ("Show more" adds a page)
PAGE_SIZE = 30
RUNNING_MARK = "⏳ "
EXAMPLES = (
    "Remember that I am allergic to peanuts",
    "What is 12 * (3 + 4)?",
    "How much have I spent this month?",
    "What do you know about me?",
)
STATUS_ICONS = {
    "ok": ":material/check_circle:",
    "error": ":material/error:",
    "denied": ":material/block:",
    "running": ":material/progress_activity:",
}


def _picked() -> None:
    """The user changed the provider or model (not just a default shown)."""
    st.session_state[PICKED_KEY] = True


def _new_search() -> None:
    """A new search lists its first page again."""
    st.session_state.pop(SHOWN_KEY, None)


def _show_more() -> None:
    st.session_state[SHOWN_KEY] = st.session_state.get(SHOWN_KEY, PAGE_SIZE) + PAGE_SIZE


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


def show_turn(turn: TurnView, *, last: bool, busy: bool) -> bool:
    """Draw a finished turn; True when the user asked to send its message again (Retry on a
    failed or stopped turn, Regenerate on the last answer)."""
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
        if turn.run_id is not None:
            st.page_link(
                TRACE_PAGE,
                label="Trace",
                icon=":material/timeline:",
                query_params={"run": str(turn.run_id)},
                help="Every step of this answer: model calls, tool calls, latency, tokens, cost",
            )
        if busy or not turn.user_text or turn.status == "running":
            return False
        if turn.status in ("failed", "cancelled"):
            return st.button(
                "Retry",
                key=f"chat_retry_{turn.run_id}",
                icon=":material/refresh:",
                help="Send this message again",
            )
        if last:
            return st.button(
                "Regenerate",
                key="chat_regenerate",
                icon=":material/autorenew:",
                help="Answer the last message again",
            )
    return False


def conversation_row(conv: ConversationView, selected: bool) -> None:
    """One conversation in the sidebar: open it, or rename / delete it from its menu."""
    row = st.container(horizontal=True, gap="small", vertical_alignment="center", wrap=False)
    if row.button(
        (RUNNING_MARK if conv.running else "") + inert_markdown(conv.title),
        key=f"chat_open_{conv.id}",
        type="primary" if selected else "tertiary",
        help="Jarvis is answering here" if conv.running else None,
        width="stretch",
    ):
        open_conversation(conv.id)
        st.rerun()
    with row.popover("", icon=":material/more_vert:", key=f"chat_menu_{conv.id}"):
        title = st.text_input("Title", value=conv.title, key=f"chat_title_{conv.id}")
        if st.button("Rename", key=f"chat_rename_{conv.id}", icon=":material/edit:"):
            try:
                conversations.rename(principal, conv.id, title)
            except JarvisError as exc:
                show_error(exc)
            else:
                st.session_state[FLASH_KEY] = "Conversation renamed."
                st.rerun()
        confirm = st.checkbox("Yes, delete it with its history", key=f"chat_confirm_{conv.id}")
        if st.button(
            "Delete",
            key=f"chat_delete_{conv.id}",
            icon=":material/delete:",
            disabled=not confirm,
        ):
            try:
                conversations.delete(principal, conv.id)
            except JarvisError as exc:
                show_error(exc)
            else:
                if selected:
                    open_conversation(None)
                st.session_state[FLASH_KEY] = "Conversation deleted."
                st.rerun()


def conversation_list(view: ChatOverview) -> None:
    """The sidebar: New chat, the title search, the conversations by date, Show more."""
    current = view.current
    if st.button("New chat", key="chat_new", icon=":material/add:", width="stretch"):
        open_conversation(None)
        st.rerun()
    st.text_input(
        "Search conversations",
        key=SEARCH_KEY,
        placeholder="Search conversations…",
        type="search",
        live="300ms",  # filters while typing, after a short pause
        label_visibility="collapsed",
        on_change=_new_search,
    )
    if not view.conversations:
        st.caption("No conversations match." if view.query else "No conversations yet.")
    for group in view.groups:
        st.caption(group.label)
        for conv in group.conversations:
            conversation_row(conv, current is not None and conv.id == current.id)
    if view.has_more:
        st.button("Show more", key="chat_more", icon=":material/expand_more:", on_click=_show_more)


def examples() -> str | None:
    """What Jarvis can do, as prompts to click; the one clicked."""
    st.markdown("**What can Jarvis do?** Ask anything, or start with one of these:")
    row = st.container(horizontal=True, gap="small")
    for index, example in enumerate(EXAMPLES):
        if row.button(example, key=f"chat_example_{index}"):
            return example
    return None


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
                # It ended between the page's overview and this replay: look again (once), so
                # the turn is drawn from history and the composer takes messages again.
                if st.session_state.get(ENDED_KEY) == turn.run_id:
                    return
                st.session_state[ENDED_KEY] = turn.run_id
                if progress.budget_warning:
                    st.session_state[WARNING_KEY] = progress.budget_warning
                st.rerun()
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
warning = st.session_state.pop(WARNING_KEY, None)

try:
    view: ChatOverview = conversations.overview(
        principal,
        conversation_in_url(),
        query=st.session_state.get(SEARCH_KEY, ""),
        limit=st.session_state.get(SHOWN_KEY, PAGE_SIZE),
    )
except JarvisError as exc:
    show_error(exc)
    st.stop()
current = view.current
choices = {c.id: c for c in view.choices}
busy = view.active_run_id is not None
if warning and not busy:  # a run being followed shows it with its answer
    st.warning(warning, icon=":material/savings:")

with st.sidebar:
    conversation_list(view)

# The picker shows what the next turn uses: a conversation whose provider has no key any more
# shows the provider it will continue with, and sending switches the conversation to it.
provider_ids = list(choices)
wanted = current.provider if current is not None and current.provider in choices else None
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
if current is not None and current.provider not in choices:
    st.warning(
        f"This conversation used {current.provider} ({current.model}), which you have no key "
        f"for any more: your next message goes to **{choices[provider].label}** ({model}). "
        "Add a key on the Secrets page, or choose another provider above.",
        icon=":material/key_off:",
    )

active: TurnView | None = None
resend: str | None = None
finished = [t for t in view.turns if not (t.status == "running" and t.run_id == view.active_run_id)]
for turn in view.turns:
    if turn.status == "running" and turn.run_id == view.active_run_id:
        active = turn
    elif show_turn(turn, last=turn is finished[-1], busy=busy):
        resend = turn.user_text
if not view.turns:
    resend = examples()

prompt = composer(busy=busy, max_chars=MAX_MESSAGE_CHARS) or resend
if prompt:
    try:
        started = runs.start_in(
            principal,
            prompt,
            conversation_id=current.id if current is not None else None,
            provider=provider,
            model=str(model),
        )
    except JarvisError as exc:
        show_error(exc)
    else:
        if started.budget_warning:
            st.session_state[WARNING_KEY] = budget_warning(started.budget_fraction)
        open_conversation(started.conversation_id)
        st.rerun()  # the next run follows it, with the composer showing it is busy
if active is not None:
    follow_run(active)
