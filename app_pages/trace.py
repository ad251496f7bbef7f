"""One run as a trace (``trace?run=<id>``): status, model, start, latency, tokens and cost, then
every step in order — each model call with what it was sent and what it answered, each tool
call with its arguments, result, duration and status. Opened from a chat answer or the Usage
page; another user's run is "not found"."""

from __future__ import annotations

import uuid

import streamlit as st

from jarvis.services.chat.views import ModelCallStep, PromptMessage, RunTrace, ToolCallStep
from jarvis.ui.components import show_errors
from jarvis.ui.formatting import count, duration, usd
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import plain_markdown

services, principal = require_user()

STATUS_BADGES = {
    "completed": ("green", ":material/check_circle:"),
    "running": ("blue", ":material/progress_activity:"),
    "failed": ("red", ":material/error:"),
    "cancelled": ("gray", ":material/stop_circle:"),
    "ok": ("green", ":material/check_circle:"),
    "error": ("red", ":material/error:"),
    "denied": ("orange", ":material/block:"),
    "stopped": ("gray", ":material/stop_circle:"),
}

st.title("Trace")

raw = st.query_params.get("run", "")
try:
    run_id = uuid.UUID(raw)
except ValueError:
    st.info(
        "Open a trace from an answer in Chat (its **Trace** link) or from a run on the Usage page."
    )
    st.page_link("app_pages/usage.py", label="Go to Usage", icon=":material/bar_chart:")
    st.stop()

with show_errors(stop=True):
    trace: RunTrace = services.traces.trace(principal, run_id)


def badge(status: str) -> None:
    colour, icon = STATUS_BADGES.get(status, ("gray", ":material/help:"))
    st.badge(status, color=colour, icon=icon)  # type: ignore[arg-type]


def prompt_message(m: PromptMessage) -> None:
    label = m.role + (f" · answers {m.tool_call_id}" if m.tool_call_id else "")
    st.caption(plain_markdown(label))
    if m.content:
        st.code(m.content, language=None, wrap_lines=True)
    for call in m.tool_calls:
        st.code(f"→ {call}", language=None, wrap_lines=True)


def model_step(n: int, s: ModelCallStep) -> None:
    with st.container(border=True, key=f"trace_step_{n}"):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{n} · Model call** (step {s.step})")
        with head:
            badge(s.status)
        tokens = f"{count(s.input_tokens)} in · {count(s.output_tokens)} out"
        if s.cache_read_tokens or s.cache_write_tokens:
            tokens += f" · {count(s.cache_read_tokens + s.cache_write_tokens)} cache"
        first = f" · first token {duration(s.first_token_ms)}" if s.first_token_ms else ""
        started = f"{s.started_at:%H:%M:%S} · " if s.started_at else ""
        st.caption(f"{started}{duration(s.duration_ms)}{first} · {tokens} tokens")
        with st.expander(f"Prompt ({len(s.prompt)} messages)"):
            for m in s.prompt:
                prompt_message(m)
        st.caption("Response")
        if s.response:
            st.code(s.response, language=None, wrap_lines=True)
        elif not s.tool_calls:
            st.caption("(no text)")
        for call in s.tool_calls:
            st.code(f"→ {call}", language=None, wrap_lines=True)
        if s.error:
            st.error(s.error, icon=":material/error:")


def tool_step(n: int, s: ToolCallStep) -> None:
    with st.container(border=True, key=f"trace_step_{n}"):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{n} · Tool call · {plain_markdown(s.tool_id)}**")
        with head:
            badge(s.status)
        st.caption(f"Duration {duration(s.duration_ms)}")
        left, right = st.columns(2)
        left.caption("Arguments")
        left.json(s.arguments, expanded=True)
        if s.result is not None:
            right.caption("Result")
            right.json(s.result, expanded=True)
        if s.error:
            st.error(s.error, icon=":material/error:")


t = trace
head = st.container(horizontal=True, vertical_alignment="center")
head.markdown(f"**{plain_markdown(t.provider)} · {plain_markdown(t.model)}**")
with head:
    badge(t.status)
st.caption(f"Started {t.started_at:%d %b %Y, %H:%M:%S} ({t.timezone}) · run {t.id}")
if t.conversation_id:
    st.page_link(
        "app_pages/chat.py",
        label="Open the conversation",
        icon=":material/chat:",
        query_params={"c": str(t.conversation_id)},
    )
cards = st.columns(4)
cards[0].metric("Latency", duration(t.latency_ms), help="From the question to the end of the run.")
cards[1].metric(
    "Tokens",
    count(t.total_tokens),
    help=f"{count(t.input_tokens)} input · {count(t.output_tokens)} output"
    + (
        f" · {count(t.cache_read_tokens)} cache read · {count(t.cache_write_tokens)} cache write"
        if t.cache_read_tokens or t.cache_write_tokens
        else ""
    ),
)
cards[2].metric(
    "Cost (estimated)" if t.usage_estimated else "Cost",
    usd(t.cost_usd, unpriced=t.unpriced),
    help="Estimated from the text: the provider reported no usage." if t.usage_estimated else None,
)
cards[3].metric("Steps", f"{len(t.model_calls)} model · {len(t.tool_calls)} tool")
st.caption(f"Input {count(t.input_tokens)} tokens · output {count(t.output_tokens)} tokens")
if t.error:
    st.error(t.error, icon=":material/error:")

st.subheader("Steps")
if not t.detailed:
    st.info(
        "This run is from before model calls were recorded: its question, tool calls and "
        "answer are shown."
    )
    st.caption("Question")
    st.code(t.question or "(none)", language=None, wrap_lines=True)
if not t.steps:
    st.caption("No model or tool call was recorded for this run.")
for n, step in enumerate(t.steps, start=1):
    if isinstance(step, ModelCallStep):
        model_step(n, step)
    else:
        tool_step(n, step)
if not t.detailed and t.answer:
    st.caption("Answer")
    st.code(t.answer, language=None, wrap_lines=True)
