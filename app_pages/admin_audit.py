"""Administration: the audit log, filtered by action, user and date."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from jarvis.services.admin import AuditEventView
from jarvis.services.audit_text import action_label
from jarvis.ui.components import show_errors
from jarvis.ui.guard import require_admin

services, principal = require_admin()

ALL = "(all)"

st.title("Audit log")
st.caption("Sign-ins, sessions, password and role changes, administration. Newest first.")

with show_errors(stop=True):
    actions = services.admin.audit_actions(principal)
    users = services.admin.list_users(principal)

col_action, col_user, col_dates, col_limit = st.columns([2, 3, 3, 1])
action = col_action.selectbox(
    "Action",
    [ALL, *actions],
    key="admin_audit_action",
    format_func=lambda a: a if a == ALL else f"{action_label(a)} ({a})",
)
emails = {u.email: u.user_id for u in users}
who = col_user.selectbox("User", [ALL, *emails], key="admin_audit_user")
today = datetime.now(UTC).date()
dates = col_dates.date_input(
    "Between", value=(today - timedelta(days=30), today), key="admin_audit_dates"
)
limit = col_limit.number_input(
    "Rows", min_value=10, max_value=2000, value=200, step=50, key="admin_audit_limit"
)

since: datetime | None = None
until: datetime | None = None
if isinstance(dates, tuple | list) and dates:
    start: date = dates[0]
    end: date = dates[-1]
    since = datetime.combine(start, time.min, UTC)
    until = datetime.combine(end, time.min, UTC) + timedelta(days=1)

with show_errors(stop=True):
    events = services.admin.audit_log(
        principal,
        action=None if action == ALL else action,
        user_id=None if who == ALL else emails[who],
        since=since,
        until=until,
        limit=int(limit),
    )


def _who(e: AuditEventView) -> str:
    user = e.user_email or ("—" if e.user_id is None else str(e.user_id))
    if e.actor_id is None or e.actor_id == e.user_id:
        return user
    return f"{user} (by {e.actor_email or e.actor_id})"


st.write(f"{len(events)} event{'s' if len(events) != 1 else ''}")
if events:
    # A static table: every column wraps to the page, details read as "key: value" text.
    st.table(
        pd.DataFrame(
            [
                {
                    "When (UTC)": e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "Who": _who(e),
                    "Action": e.action_label,
                    "Target": e.target_text,
                    "Details": e.details_text,
                    "IP": e.ip or "",
                }
                for e in events
            ],
            columns=["When (UTC)", "Who", "Action", "Target", "Details", "IP"],
        ).set_index("When (UTC)"),
    )
    st.download_button(
        "Download as CSV (raw actions and details)",
        pd.DataFrame(
            [
                {
                    "created_at": e.created_at.isoformat(),
                    "action": e.action,
                    "user": e.user_email or (str(e.user_id) if e.user_id else ""),
                    "actor": e.actor_email or (str(e.actor_id) if e.actor_id else ""),
                    "target": e.target or "",
                    "ip": e.ip or "",
                    "details": json.dumps(e.details, sort_keys=True) if e.details else "",
                }
                for e in events
            ]
        ).to_csv(index=False),
        file_name="audit.csv",
        mime="text/csv",
        key="admin_audit_csv",
    )
