"""Secrets: add, replace and delete provider API keys. Values are write-only.

Saving happens in the submit buttons' callbacks so the typed value is wiped from the session
state in the same step (``clear_on_submit`` alone leaves it on the server until the next run),
and the value fields are new widgets after each submit (:func:`fresh_key`), so the browser does
not keep showing what was typed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import streamlit as st

from jarvis.services.secrets import (
    BASE_URL_ALLOWED,
    PROVIDER_LABELS,
    PROVIDERS,
    KeyCheck,
    SecretView,
)
from jarvis.ui.components import flash, fresh_key, renew, show_errors, show_flash
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import plain_markdown

services, principal = require_user()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _label(provider: str) -> str:
    return PROVIDER_LABELS.get(provider, provider)


def _save_new() -> None:
    state = st.session_state
    try:
        with show_errors(in_callback=True):
            created = services.secrets.create(
                principal,
                state.get("secrets_provider", ""),
                state.get("secrets_name", ""),
                state.get(fresh_key("secrets_value"), ""),
                base_url=state.get("secrets_base_url") or None,
            )
            flash(
                f"Saved the {_label(created.provider)} secret “{created.name}” ({created.masked}). "
                "Use Test to check it with the provider.",
                rerun=False,
            )
            state["secrets_name"] = ""
            state["secrets_base_url"] = ""
    finally:
        renew("secrets_value")


def _replace(secret_id: uuid.UUID) -> None:
    state = st.session_state
    value_name, url_key = f"secrets_new_value_{secret_id}", f"secrets_new_base_url_{secret_id}"
    try:
        with show_errors(in_callback=True):
            updated = services.secrets.update(
                principal,
                secret_id,
                state.get(fresh_key(value_name), ""),
                base_url=state.get(url_key) or None,
            )
            flash(f"Replaced the value of “{updated.name}” ({updated.masked}).", rerun=False)
            state.pop(f"secrets_test_result_{secret_id}", None)  # said of the old value
    finally:
        renew(value_name)


st.title("Secrets")
st.caption(
    "Your provider API keys, encrypted at rest with your own data key. After saving, a value is "
    "never shown again: only its last four characters are."
)
show_flash()

with st.form("secrets_add_form"):
    st.subheader("Add a secret")
    st.selectbox("Provider", PROVIDERS, format_func=_label, key="secrets_provider")
    st.text_input(
        "Name",
        placeholder="default",
        max_chars=100,
        key="secrets_name",
        help="Tell several keys of one provider apart (e.g. work, personal).",
    )
    st.text_input("Secret value", type="password", key=fresh_key("secrets_value"))
    st.text_input(
        "Base URL (OpenAI-compatible and custom only)",
        key="secrets_base_url",
        placeholder="http://localhost:11434/v1",
    )
    st.form_submit_button("Save secret", type="primary", key="secrets_save", on_click=_save_new)

with show_errors(stop=True):
    secrets: list[SecretView] = services.secrets.list(principal)

st.subheader("Your secrets")
if not secrets:
    st.info("No secrets yet. Add an API key above to use that provider in chat.")
    st.stop()

any_url = any(s.base_url for s in secrets)
st.dataframe(
    [
        {
            "Provider": _label(s.provider),
            "Name": s.name,
            "Key": s.masked,
            **({"Base URL": s.base_url or ""} if any_url else {}),
            "Added": _when(s.created_at),
            "Last used": _when(s.last_used_at),
        }
        for s in secrets
    ],
    hide_index=True,
    width="stretch",
    column_config={
        "Provider": st.column_config.TextColumn(width="medium"),
        "Name": st.column_config.TextColumn(width="small"),
        "Key": st.column_config.TextColumn(width="small"),
        "Base URL": st.column_config.TextColumn(width="medium"),
        "Added": st.column_config.TextColumn(width="small"),
        "Last used": st.column_config.TextColumn(width="small"),
    },
    key="secrets_table",
)

for s in secrets:
    with st.container(border=True):
        head, action = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{plain_markdown(f'{_label(s.provider)} · {s.name} · {s.masked}')}**")
        result_key = f"secrets_test_result_{s.id}"
        if services.secrets.testable(s.provider) and action.button(
            "Test",
            key=f"secrets_test_{s.id}",
            icon=":material/network_check:",
            help="Ask the provider for its model list with this key (nothing is sent to a model).",
        ):
            with show_errors(), st.spinner("Asking the provider…"):
                st.session_state[result_key] = services.secrets.test(principal, s.id)
        checked: KeyCheck | None = st.session_state.get(result_key)
        if checked is not None:
            if checked.ok:
                st.success(checked.message, icon=":material/check_circle:")
            else:
                st.error(checked.message, icon=":material/error:")
        with st.expander("Replace or delete"):
            with st.form(f"secrets_replace_form_{s.id}"):
                st.text_input(
                    "New value", type="password", key=fresh_key(f"secrets_new_value_{s.id}")
                )
                if s.provider in BASE_URL_ALLOWED:
                    st.text_input(
                        "Base URL",
                        placeholder=s.base_url or "",
                        key=f"secrets_new_base_url_{s.id}",
                        help="Leave empty to keep the current one.",
                    )
                st.form_submit_button(
                    "Replace value", key=f"secrets_replace_{s.id}", on_click=_replace, args=(s.id,)
                )
            confirm = st.checkbox("Yes, delete this secret", key=f"secrets_confirm_delete_{s.id}")
            if st.button("Delete", key=f"secrets_delete_{s.id}", disabled=not confirm):
                with show_errors():
                    services.secrets.delete(principal, s.id)
                    st.session_state.pop(f"secrets_confirm_delete_{s.id}", None)
                    flash(f"Deleted the {_label(s.provider)} secret “{s.name}”.")
