"""Usage and cost: metric cards, daily cost by model, tokens by type, top tools, recent runs,
CSV export; admins also pick a user (or everyone) and see the per-user ranking."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from jarvis.services.usage import (
    UsageQuery,
    available_timezone_names,
    daily_csv,
    runs_csv,
    zone,
)
from jarvis.ui.components import show_errors, show_flash
from jarvis.ui.guard import require_user

services, principal = require_user()

EVERYONE = "__everyone__"
ME = "__me__"
PAGE_SIZE = 25

st.title("Usage and cost")

# "Today" is the user's local day (their time zone), like every day on this page.
today = services.clock.now().astimezone(zone(services.usage.timezone(principal))).date()
filters = st.columns([2, 2, 3] if principal.is_admin else [2, 3])
picked = filters[0].date_input(
    "Dates",
    value=(today - timedelta(days=29), today),
    max_value=today + timedelta(days=1),
    key="usage_range",
)
if isinstance(picked, tuple | list):
    start: date = picked[0] if picked else today
    end: date = picked[1] if len(picked) > 1 else start
else:
    start = end = picked

# Widgets whose options come from the data are drawn after the call, in these columns; their
# current values are read from the session state first.
models = tuple(st.session_state.get("usage_models", []))
who = st.session_state.get("usage_user", ME) if principal.is_admin else ME
page_no = int(st.session_state.get("usage_runs_page", 1))
query = UsageQuery(
    start=start,
    end=end,
    models=models,
    everyone=who == EVERYONE,
    user_id=None if who in (ME, EVERYONE) else uuid.UUID(who),
    page=max(page_no - 1, 0),
    page_size=PAGE_SIZE,
)

with show_errors(stop=True):
    dash = services.usage.dashboard(principal, query)

if principal.is_admin:
    labels = {ME: f"Me ({principal.email})", EVERYONE: "Everyone"}
    labels.update(
        {
            str(u.user_id): f"{u.display_name} <{u.email}>"
            for u in dash.users
            if u.user_id != principal.user_id
        }
    )
    filters[1].selectbox(
        "User", options=list(labels), format_func=lambda k: labels.get(k, k), key="usage_user"
    )
filters[-1].multiselect(
    "Models",
    options=dash.available_models,
    key="usage_models",
    placeholder="All models",
)

scope = "everyone (each user's local days)" if query.everyone else f"time zone {dash.timezone}"
st.caption(f"{start:%d %b %Y} – {end:%d %b %Y} · {scope}")


def _set_timezone() -> None:
    with show_errors(in_callback=True):
        services.usage.set_timezone(principal, st.session_state.get("usage_timezone", ""))


show_flash()  # a time zone that could not be saved
if not query.everyone and query.user_id is None:  # own view: dash.timezone is the user's
    zones = available_timezone_names()
    if dash.timezone in zones:
        st.session_state["usage_timezone"] = dash.timezone
    st.expander("Your time zone").selectbox(
        "Time zone for your days and times",
        zones,
        key="usage_timezone",
        on_change=_set_timezone,
        help="Your usage days, the month and run times use this zone.",
    )

if dash.budget is not None:
    b = dash.budget
    st.progress(
        min(b.fraction, 1.0),
        text=f"Monthly budget: ${b.spent_usd:,.2f} of ${b.budget_usd:,.2f} ({b.fraction:.0%})",
    )
    if b.exceeded:
        st.error(
            "The monthly budget is used up: new chat runs are refused until next month "
            "or until an admin raises the budget."
        )
    elif b.warning:
        st.warning("Over 80 % of the monthly budget is spent.")

s = dash.summary
m = dash.month
cards = st.columns(5)
cards[0].metric("Runs", f"{s.runs:,}", help=f"{s.failed_runs:,} failed")
cards[1].metric("Tokens", f"{s.total_tokens:,}")
cards[2].metric("Cost (USD)", f"${s.cost:,.2f}", help="Priced runs only.")
cards[3].metric(
    "Unpriced runs",
    f"{s.unpriced_runs:,}",
    help="Runs on models without a price: their cost is unknown, not zero. "
    "An admin can add the price (Admin → Prices & budgets) and reprice.",
)
cards[4].metric(
    "This month",
    f"${m.cost:,.2f}",
    delta=f"→ ${m.projected_cost:,.2f} projected",
    delta_color="off",
)
if s.unpriced_runs:
    st.info(f"{s.unpriced_runs:,} runs used models without a price; their cost is not included.")

if dash.is_empty:
    st.info(
        "No runs in this range yet. Start a conversation on the Chat page, widen the date range "
        "or clear the model filter. (To explore with sample data, an operator can run "
        "`jarvis demo seed`.)"
    )
else:
    daily = pd.DataFrame([asdict(r) for r in dash.daily])
    left, right = st.columns(2)
    with left:
        st.subheader("Daily cost by model")
        if daily.empty:
            st.caption("No finished runs in this range.")
        else:
            daily["cost_usd"] = daily["cost"].astype(float)
            fig = px.bar(
                daily, x="day", y="cost_usd", color="model", labels={"cost_usd": "USD", "day": ""}
            )
            fig.update_layout(
                barmode="stack", height=340, margin={"t": 10, "b": 10}, legend_title_text=""
            )
            st.plotly_chart(fig, key="usage_chart_cost")
    with right:
        st.subheader("Tokens by type")
        if not daily.empty:
            tok = (
                daily.groupby("day")[
                    ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"]
                ]
                .sum()
                .reset_index()
                .melt(id_vars="day", var_name="type", value_name="tokens")
            )
            tok["type"] = tok["type"].str.replace("_tokens", "").str.replace("_", " ")
            fig = px.bar(tok, x="day", y="tokens", color="type", labels={"day": ""})
            fig.update_layout(
                barmode="stack", height=340, margin={"t": 10, "b": 10}, legend_title_text=""
            )
            st.plotly_chart(fig, key="usage_chart_tokens")

    st.subheader("Top tools")
    if not dash.tools:
        st.caption("No tool calls in this range. Tools run when the agent uses them in a chat.")
    else:
        tools = pd.DataFrame(
            [
                {
                    "tool": t.tool_id,
                    "calls": t.calls,
                    "errors": t.errors,
                    "denied": t.denied,
                    "error rate": f"{t.error_rate:.1%}",
                    "avg latency (ms)": None
                    if t.avg_latency_ms is None
                    else round(t.avg_latency_ms),
                    "max latency (ms)": t.max_latency_ms,
                }
                for t in dash.tools
            ]
        )
        tl, tr = st.columns([3, 2])
        fig = px.bar(tools.head(10), x="calls", y="tool", orientation="h", labels={"tool": ""})
        fig.update_layout(
            height=300, margin={"t": 10, "b": 10}, yaxis={"categoryorder": "total ascending"}
        )
        tl.plotly_chart(fig, key="usage_chart_tools")
        tr.dataframe(tools, hide_index=True, key="usage_tools_table")

    if dash.ranking:
        st.subheader("Users by cost")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "user": r.display_name or r.email,
                        "email": r.email,
                        "runs": r.runs,
                        "tokens": r.total_tokens,
                        "cost (USD)": float(r.cost),
                        "unpriced runs": r.unpriced_runs,
                    }
                    for r in dash.ranking
                ]
            ),
            hide_index=True,
            key="usage_ranking_table",
        )

    st.subheader("Recent runs")
    runs = pd.DataFrame(
        [
            {
                "started": r.started_at.strftime("%Y-%m-%d %H:%M"),
                "user": r.user_email,
                "model": r.model,
                "status": r.status,
                "tokens": r.total_tokens,
                "cost (USD)": "unpriced" if r.unpriced else f"{r.cost or 0:.6f}",
            }
            for r in dash.runs.rows
        ]
    )
    if not query.everyone and query.user_id is None:
        runs = runs.drop(columns=["user"], errors="ignore")
    st.dataframe(runs, hide_index=True, key="usage_runs_table")
    pager = st.columns([1, 4])
    pager[0].number_input("Page", min_value=1, step=1, key="usage_runs_page")
    pager[1].caption("More runs on the next page." if dash.runs.has_more else "Last page.")

    st.download_button(
        "Download daily breakdown (CSV)",
        data=daily_csv(dash.daily),
        file_name=f"jarvis-usage-{start}-{end}.csv",
        mime="text/csv",
        key="usage_csv_daily",
        icon=":material/download:",
    )
    st.download_button(
        "Download runs on this page (CSV)",
        data=runs_csv(dash.runs.rows),
        file_name=f"jarvis-runs-{start}-{end}-p{page_no}.csv",
        mime="text/csv",
        key="usage_csv_runs",
        icon=":material/download:",
    )
