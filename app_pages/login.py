"""Sign in, or create the first (admin) account, or register when sign-up is open."""

from __future__ import annotations

import streamlit as st

from jarvis.ui.components import show_errors
from jarvis.ui.services import get_services
from jarvis.ui.session import client_details, sign_in, take_notice

services = get_services()
st.title("Jarvis")
notice = take_notice()
if notice:
    st.info(notice, icon=":material/logout:")

if not services.accounts.has_users():
    st.subheader("Create the administrator account")
    st.caption("No account exists yet. The first account becomes the administrator.")
    with st.form("login_first_admin"):
        email = st.text_input("Email", key="login_admin_email")
        name = st.text_input("Display name", key="login_admin_name")
        password = st.text_input(
            "Password (8+ characters)", type="password", key="login_admin_password"
        )
        confirm = st.text_input("Repeat password", type="password", key="login_admin_confirm")
        submitted = st.form_submit_button("Create admin account")
    if submitted:
        if password != confirm:
            st.error("The passwords do not match.")
        else:
            with show_errors():
                principal = services.accounts.register(email, password, name)
                sign_in(services, principal)
                st.rerun()
    st.stop()

tab_in, tab_up = st.tabs(["Sign in", "Create account"])
with tab_in, st.form("login_form"):
    email = st.text_input("Email", key="login_email")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Sign in")
if submitted:
    ip, agent = client_details(services)
    with show_errors():
        issued = services.sign_in.login(email, password, ip=ip, user_agent=agent)
        sign_in(services, issued)
        st.rerun()

with tab_up:
    if not services.accounts.signup_open():
        st.info("Sign-up is closed on this Jarvis. Ask an administrator for an account.")
    else:
        with st.form("login_signup"):
            su_email = st.text_input("Email", key="login_signup_email")
            su_name = st.text_input("Display name", key="login_signup_name")
            su_password = st.text_input(
                "Password (8+ characters)", type="password", key="login_signup_password"
            )
            su_submitted = st.form_submit_button("Create account")
        if su_submitted:
            with show_errors():
                principal = services.accounts.register(
                    su_email, su_password, su_name, ip=client_details(services)[0]
                )
                sign_in(services, principal)
                st.rerun()
