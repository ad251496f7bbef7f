"""Home: where to start — recent conversations, this month's spend against the budget and
quick links. (The database details are on the admin page "System".)"""

from __future__ import annotations

import streamlit as st

from jarvis.ui.components import show_errors
from jarvis.ui.guard import require_user

services, principal = require_user()

#: The chat page reopens the conversation a tab had open; "New chat" forgets it first.
CHAT_LAST_KEY = "chat_last_conversation"


def _new_chat() -> None:
    st.session_state.pop(CHAT_LAST_KEY, None)


st.title(f"Welcome, {principal.display_name or principal.email}")

with show_errors(stop=True):
    start = services.home.start_page(principal)

links = st.columns(4)
if links[0].button("New chat", key="home_new_chat", icon=":material/add_comment:", type="primary"):
    _new_chat()
    st.switch_page("app_pages/chat.py")
links[1].page_link("app_pages/usage.py", label="Usage", icon=":material/bar_chart:")
links[2].page_link("app_pages/memory.py", label="Memory", icon=":material/psychology:")
links[3].page_link("app_pages/graph.py", label="Knowledge graph", icon=":material/hub:")

st.subheader("This month")
budget = start.budget
st.progress(min(budget.fraction, 1.0), text=start.spend_text)
if budget.exceeded:
    st.error(
        "Your monthly budget is spent: chat with models is paused until next month "
        "(the offline model still works). An administrator can raise it.",
        icon=":material/block:",
    )
elif budget.warning:
    st.warning("Over 80 % of your monthly budget is spent.", icon=":material/warning:")
if budget.unpriced_runs:
    st.caption(
        f"{budget.unpriced_runs} run{'s' if budget.unpriced_runs != 1 else ''} used models "
        "without a price and are not counted."
    )

st.subheader("Recent conversations")
if not start.recent:
    st.info("No conversations yet. Start one with **New chat**.", icon=":material/chat:")
for item in start.recent:
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.page_link(
        "app_pages/chat.py",
        label=item.conversation.title,
        icon=":material/chat_bubble:",
        query_params={"c": str(item.conversation.id)},
    )
    right.caption(item.last_active)
