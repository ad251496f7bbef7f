"""Semantic memory: search (semantic or hybrid), browse by date, add and delete memories.

The page body says which embedding model is in use, then one function per tab (search,
browse, add) reads its widgets, makes one service call and renders the answer.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import streamlit as st

from jarvis.services.memory import (
    EmbeddingInfo,
    MemoryHit,
    MemoryView,
    SearchMode,
    model_label,
)
from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.guard import require_user
from jarvis.ui.jobs import follow_job, remember_job, show_job_outcome
from jarvis.ui.markdown import inert_markdown

services, principal = require_user()
memory = services.memory
MODES: list[SearchMode] = ["semantic", "hybrid"]
REEMBED_JOB = "memory_reembed_job"


def header() -> EmbeddingInfo:
    """The title and which embedding model this user's memories use."""
    st.title("Memory")
    show_flash()
    info = memory.embedding_info(principal)
    if info.lexical:
        st.info(
            f"Embeddings: **{info.label}**. This offline embedder is *lexical*: it matches shared "
            "words and word parts, not meaning. For search by meaning, move your memories to "
            "wordllama (offline) under *Embedding model* below.",
            icon=":material/text_fields:",
        )
    else:
        st.caption(f"Embeddings: {info.label}")
    if info.other_models:
        others = ", ".join(f"{n} with {model_label(m)}" for m, n in info.other_models.items())
        st.warning(
            f"Some memories use another embedding model and are left out of searches ({others}). "
            "Re-embed them under *Embedding model* below."
        )
    embedder_switch(info.model_name, bool(info.other_models or info.lexical))
    return info


def embedder_switch(current: str, open_: bool) -> None:
    """Move this user's memories and graph entities to another embedding model: a background
    job with a progress bar, then its summary."""
    following = st.session_state.get(REEMBED_JOB) is not None
    with st.expander("Embedding model", expanded=open_ or following):
        choices = dict(memory.embedder_choices())
        names = list(choices)
        model = st.selectbox(
            "Model",
            names,
            index=names.index(current) if current in names else 0,
            format_func=lambda name: choices.get(name, name),
            key="memory_embedder",
        )
        if st.button("Re-embed my memories", key="memory_reembed_go", icon=":material/sync:"):
            with show_errors():
                remember_job(REEMBED_JOB, services.jobs.reembed(principal, model))
        show_job_outcome(
            follow_job(services.jobs, principal, REEMBED_JOB),
            done="Done.",
            failed="Re-embedding failed.",
        )


def _delete_button(memory_id: uuid.UUID, key: str) -> None:
    if st.button("Delete", key=key, icon=":material/delete:"):
        with show_errors():
            memory.delete(principal, memory_id)
            flash("Memory deleted.")


def _meta(item: MemoryView | MemoryHit, extra: str = "") -> None:
    """When the memory was made, where from (a link to its conversation) and ``extra``."""
    parts = [extra] if extra else []
    parts.append(item.created_at.strftime("%Y-%m-%d %H:%M"))
    if item.conversation_id is None:
        origin = item.metadata.get("origin")
        parts.append(
            "added on this page"
            if origin == "memory page"
            else "from a deleted conversation"
            if item.source
            else "added by hand"
        )
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.caption(" · ".join(parts))
    if item.conversation_id is not None:
        right.page_link(
            "app_pages/chat.py",
            label=f"From: {item.conversation_title or 'a conversation'}",
            icon=":material/chat:",
            query_params={"c": str(item.conversation_id)},
        )


def search_tab(info: EmbeddingInfo) -> None:
    """Top-k search, semantic or hybrid, each hit with its score and a delete button."""
    q_col, m_col, k_col = st.columns([4, 2, 1])
    query = q_col.text_input(
        "Search your memories", key="memory_query", placeholder="what do I know about…"
    )
    mode = m_col.radio(
        "Mode",
        MODES,
        horizontal=True,
        key="memory_mode",
        help="Hybrid adds full-text relevance (exact words) to the similarity by meaning.",
    )
    k = k_col.number_input("Top k", 1, 50, 5, key="memory_k")
    min_score = st.slider(
        "Minimum similarity (semantic)",
        0.0,
        1.0,
        info.min_similarity,
        0.01,
        key="memory_min_score",
        disabled=mode != "semantic",
        help="Memories less similar than this are not listed. The default suits your "
        "embedding model: unrelated memories score about 0 with it.",
    )
    if not query.strip():
        return
    hits = []
    with show_errors():
        hits = memory.search(
            principal,
            query,
            k=int(k),
            mode=mode,
            min_score=min_score if mode == "semantic" and min_score > 0 else None,
        )
    if not hits:
        st.info("No memory matches.")
    for hit in hits:
        with st.container(border=True):
            st.markdown(inert_markdown(hit.content))
            score = (
                f"similarity {hit.score:.3f}"
                if mode == "semantic"
                else f"fused score {hit.score:.4f} (vector #{hit.vector_rank or '–'}, "
                f"text #{hit.text_rank or '–'})"
            )
            _meta(hit, score)
            _delete_button(hit.id, f"memory_del_hit_{hit.id}")


def browse_tab() -> None:
    """The user's memories, newest first, filtered by dates, text and source."""
    today = services.clock.now().date()
    f1, f2 = st.columns([2, 3])
    period = f1.date_input(
        "Created between", value=(today - timedelta(days=30), today), key="memory_dates"
    )
    contains = f2.text_input("Text contains", key="memory_contains")
    since = until = None
    if isinstance(period, tuple | list) and len(period) == 2:
        since = datetime.combine(period[0], time.min, UTC)
        until = datetime.combine(period[1], time.min, UTC) + timedelta(days=1)
    rows = []
    with show_errors():
        rows = memory.browse(principal, since=since, until=until, contains=contains, limit=100)
    st.caption(f"{len(rows)} memories (newest first, at most 100)")
    for row in rows:
        with st.container(border=True):
            st.markdown(inert_markdown(row.content))
            _meta(row, model_label(row.embedding_model))
            _delete_button(row.id, f"memory_del_row_{row.id}")


def add_tab() -> None:
    """A form that stores one memory."""
    with st.form("memory_add_form", clear_on_submit=True):
        content = st.text_area("Memory", key="memory_new_content", max_chars=8000)
        if st.form_submit_button("Save memory"):
            with show_errors():
                saved = memory.store(principal, content, metadata={"origin": "memory page"})
                st.success(f"Saved ({model_label(saved.embedding_model)}).")


# -- the page ----------------------------------------------------------------------------------

embedding = header()
search_pane, browse_pane, add_pane = st.tabs(["Search", "Browse", "Add"])
with search_pane:
    search_tab(embedding)
with browse_pane:
    browse_tab()
with add_pane:
    add_tab()
