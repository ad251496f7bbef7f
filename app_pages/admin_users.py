"""Administration: users (role, activate / deactivate, password reset) and the sign-up switch."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.guard import require_admin
from jarvis.ui.markdown import plain_markdown

services, principal = require_admin()


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


st.title("Users")
show_flash()

# -- sign-up switch --------------------------------------------------------------------------
signup_open = services.accounts.signup_open()
wanted = st.toggle(
    "Open sign-up (anyone who can reach Jarvis may create an account)",
    value=signup_open,
    key="admin_users_signup",
)
if wanted != signup_open:
    with show_errors():
        services.accounts.set_signup_open(principal, wanted)
        flash("Sign-up is now " + ("open." if wanted else "closed."))

# -- list ------------------------------------------------------------------------------------
query = st.text_input("Search by email or name", key="admin_users_query")
with show_errors(stop=True):
    users = services.admin.list_users(principal, query)

st.dataframe(
    pd.DataFrame(
        [
            {
                "Email": u.email,
                "Name": u.display_name,
                "Role": u.role,
                "Active": u.is_active,
                "Created": _when(u.created_at),
                "Last sign-in": _when(u.last_login_at),
            }
            for u in users
        ],
        columns=["Email", "Name", "Role", "Active", "Created", "Last sign-in"],
    ),
    hide_index=True,
    width="stretch",
)

# -- manage one user -------------------------------------------------------------------------
st.subheader("Manage a user")
if not users:
    st.info("No user matches.")
else:
    by_email = {u.email: u for u in users}
    chosen = st.selectbox("User", list(by_email), key="admin_users_selected")
    user = by_email[chosen]
    st.caption(
        f"{plain_markdown(user.display_name)} · {'active' if user.is_active else 'deactivated'} · "
        f"role {user.role}" + (" · this is you" if user.user_id == principal.user_id else "")
    )
    role_col, active_col = st.columns(2)
    with role_col:
        role = st.radio(
            "Role",
            ["user", "admin"],
            index=0 if user.role == "user" else 1,
            key=f"admin_users_role_{user.user_id.hex}",
            horizontal=True,
        )
        if st.button("Save role", key="admin_users_save_role", disabled=role == user.role):
            with show_errors():
                services.admin.set_role(principal, user.user_id, role)
                flash(f"{user.email} is now {role}.")
    with active_col:
        label = "Deactivate" if user.is_active else "Activate"
        st.caption("Deactivating signs the user out everywhere at once.")
        if st.button(label, key="admin_users_toggle_active"):
            with show_errors():
                services.admin.set_active(principal, user.user_id, not user.is_active)
                flash(f"{user.email} was {'deactivated' if user.is_active else 'activated'}.")

    with st.form("admin_users_reset_form", clear_on_submit=True):
        st.markdown("**Reset password** — the user's sessions end; tell them the new password.")
        new_pw = st.text_input("New password", type="password", key="admin_users_new_password")
        reset = st.form_submit_button("Reset password")
    if reset:
        with show_errors():
            services.admin.reset_password(principal, user.user_id, new_pw)
            flash(f"The password of {user.email} was reset.")

# -- add a user ------------------------------------------------------------------------------
st.subheader("Add a user")
with st.form("admin_users_add_form", clear_on_submit=True):
    add_email = st.text_input("Email", key="admin_users_add_email")
    add_name = st.text_input("Display name", key="admin_users_add_name")
    add_password = st.text_input("Password", type="password", key="admin_users_add_password")
    add_role = st.selectbox("Role", ["user", "admin"], key="admin_users_add_role")
    add = st.form_submit_button("Add user")
if add:
    with show_errors():
        created = services.accounts.register(
            add_email, add_password, add_name, role=add_role, actor=principal
        )
        flash(f"Created {created.role} {created.email}.")
