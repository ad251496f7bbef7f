"""Your account: change password, active sessions (with revoke), personal API keys (create,
shown once; list; revoke), sign out everywhere."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import plain_markdown
from jarvis.ui.session import current_session_id, end_local_session

services, principal = require_user()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


st.title("Account")
st.write(
    f"**{principal.display_name or principal.email}** · {principal.email} · role **{principal.role}**"
)
show_flash()

this_session = current_session_id()

st.subheader("Change password")
with st.form("account_password_form", clear_on_submit=True):
    current = st.text_input("Current password", type="password", key="account_current_password")
    new = st.text_input(
        "New password (8–1024 characters)", type="password", key="account_new_password"
    )
    confirm = st.text_input("Repeat new password", type="password", key="account_confirm_password")
    change = st.form_submit_button("Change password")
if change:
    if new != confirm:
        st.error("The new passwords do not match.")
    else:
        with show_errors():
            ended = services.accounts.change_password(
                principal, current, new, keep_session_id=this_session
            )
            flash(f"Password changed. {ended} other session{'s' if ended != 1 else ''} signed out.")

st.subheader("Active sessions")
st.caption("Each browser or device you are signed in on. Sign out the ones you do not recognise.")
sessions = []
with show_errors():
    sessions = services.sessions.list_active(principal, this_session)
for view in sessions:
    with st.container(border=True):
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f"**{plain_markdown(view.summary)}**")
        left.caption(
            f"IP {view.ip or 'local or unknown'} · signed in {_when(view.started_at)} · "
            f"expires {_when(view.expires_at)}",
            help=plain_markdown(view.user_agent[:300]),
        )
        if not view.current and right.button(
            "Sign out", key=f"account_revoke_{view.session_id.hex}", icon=":material/logout:"
        ):
            with show_errors():
                services.sessions.revoke(principal, view.session_id)
                flash("That session was signed out.")
if not sessions:
    st.info("No active sessions.")
others = [v for v in sessions if not v.current]
if this_session is not None and st.button(
    "Sign out all other sessions",
    key="account_sign_out_others",
    icon=":material/devices_off:",
    disabled=not others,
    help="Every other browser and device is signed out at its next click; this one stays.",
):
    with show_errors():
        ended = services.sessions.sign_out_others(principal, this_session)
        flash(f"Signed out {ended} other session{'s' if ended != 1 else ''}.")

st.subheader("API keys")
st.caption(
    "Personal keys let programs act as you (same budget, limits and permissions): send "
    "`Authorization: Bearer <key>` to the HTTP API, or use the key as the API key of any OpenAI "
    "client with the base URL `/api/v1/openai/v1`."
)
EXPIRY_CHOICES = {"Never": None, "30 days": 30, "90 days": 90, "1 year": 365}
with st.form("account_api_key_form", clear_on_submit=True):
    key_name = st.text_input(
        "Name (what the key is for)", max_chars=100, key="account_api_key_name"
    )
    expiry = st.selectbox("Expires", list(EXPIRY_CHOICES), key="account_api_key_expiry")
    create_key = st.form_submit_button("Create key")
if create_key:
    with show_errors():
        created = services.api_keys.create(
            principal, key_name, expires_in_days=EXPIRY_CHOICES.get(expiry)
        )
        # Shown in this run only: the key is never stored anywhere Jarvis could show it again.
        st.success(f"Key **{plain_markdown(created.key.name)}** created. Copy it now:")
        st.code(created.secret, language=None)
        st.warning("This key is shown only this once. Jarvis keeps only its hash.", icon="🔑")
keys = []
with show_errors():
    keys = services.api_keys.list(principal)
now = services.clock.now()
for k in keys:
    state = "revoked" if not k.active else "expired" if k.expired(now) else "active"
    with st.container(border=True):
        left, right = st.columns([5, 1])
        left.markdown(f"**{plain_markdown(k.name)}** · `{k.prefix}…` · {state}")
        left.caption(
            f"created {_when(k.created_at)} · last used {_when(k.last_used_at)} · "
            f"expires {_when(k.expires_at) if k.expires_at else 'never'}"
        )
        if k.active and right.button(
            "Revoke", key=f"account_api_key_revoke_{k.id.hex}", icon=":material/key_off:"
        ):
            with show_errors():
                services.api_keys.revoke(principal, k.id)
                flash(f"The key {plain_markdown(k.name)} was revoked: it stops working at once.")
if not keys:
    st.info("No API keys yet.")

st.subheader("Sign out everywhere")
st.caption("Ends every session of your account, this browser included.")
if st.button("Sign out everywhere", key="account_sign_out_everywhere", type="primary"):
    with show_errors():
        services.sessions.sign_out_everywhere(principal)
        end_local_session()
        st.rerun()
