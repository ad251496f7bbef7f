"""Usage and cost: the headline (this period's cost; the month so far against the budget and
where this pace ends, in words), range presets, daily cost by model and tokens by type (one
colour per model and per token type everywhere), cost and p50/p95 latency per model, top tools,
recent runs (each opens its trace), CSV export; admins also pick a user (or everyone) and see
the per-user ranking."""

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
from jarvis.ui.colours import TOKEN_COLOURS, model_colours
from jarvis.ui.components import show_errors, show_flash
from jarvis.ui.formatting import count, duration, percent, usd
from jarvis.ui.guard import require_user
from jarvis.ui.markdown import plain_markdown
from jarvis.ui.navigation import trace_link
from jarvis.ui.usage_view import (
    DEFAULT_PRESET,
    PRESETS,
    month_sentence,
    period_label,
    preset_range,
)

services, principal = require_user()

PRESET_KEY = "usage_preset"
RANGE_KEY = "usage_range"
EVERYONE = "__everyone__"
ME = "__me__"
PAGE_SIZE = 25

st.title("Usage and cost")

# "Today" is the user's local day (their time zone), like every day on this page.
today = services.clock.now().astimezone(zone(services.usage.timezone(principal))).date()


def _apply_preset() -> None:
    preset = st.session_state.get(PRESET_KEY)
    if preset:
        st.session_state[RANGE_KEY] = preset_range(preset, today)


def _custom_range() -> None:
    st.session_state[PRESET_KEY] = None  # the dates were picked by hand


if RANGE_KEY not in st.session_state:
    st.session_state.setdefault(PRESET_KEY, DEFAULT_PRESET)
if st.session_state.get(PRESET_KEY) or RANGE_KEY not in st.session_state:
    # A preset follows "today" on every run: past midnight, or after the time zone changed.
    st.session_state[RANGE_KEY] = preset_range(
        st.session_state.get(PRESET_KEY) or DEFAULT_PRESET, today
    )
filters = st.columns([3, 2, 2, 3] if principal.is_admin else [3, 2, 3])
filters[0].segmented_control("Range", PRESETS, key=PRESET_KEY, on_change=_apply_preset)
picked = filters[1].date_input(
    "Dates", max_value=today + timedelta(days=1), key=RANGE_KEY, on_change=_custom_range
)
if isinstance(picked, tuple | list):
    start: date = picked[0] if picked else today
    end: date = picked[1] if len(picked) > 1 else start
else:
    start = end = picked
preset: str | None = st.session_state.get(PRESET_KEY)

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
    filters[2].selectbox(
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

s = dash.summary
m = dash.month
own = not query.everyone and query.user_id is None
st.metric(
    f"Cost, {period_label(preset, start, end)}",
    usd(s.cost),
    help="Priced runs only."
    + (
        f" {count(s.unpriced_runs)} runs on unpriced models are not included."
        if s.unpriced_runs
        else ""
    ),
)
st.markdown(plain_markdown(month_sentence(m, dash.budget)))
if dash.budget is not None:
    b = dash.budget
    st.progress(
        min(b.fraction, 1.0),
        text=f"Monthly budget: {usd(b.spent_usd)} of {usd(b.budget_usd)} ({percent(b.fraction)})",
    )
    if b.exceeded:
        st.error(
            "The monthly budget is used up: new chat runs are refused until next month "
            "or until an admin raises the budget."
        )
    elif b.warning:
        st.warning("Over 80 % of the monthly budget is spent.")

cards = st.columns(4)
cards[0].metric("Runs", count(s.runs), help=f"{count(s.failed_runs)} failed")
cards[1].metric(
    "Tokens",
    count(s.total_tokens),
    help=f"{count(s.input_tokens)} input · {count(s.output_tokens)} output",
)
cards[2].metric(
    "Unpriced runs",
    count(s.unpriced_runs),
    help="Runs on models without a price: their cost is unknown, not zero. "
    "An admin can add the price and recompute costs (Admin → Prices & budgets).",
)
cards[3].metric("Projected this month", usd(m.projected_cost), help="At the pace so far.")
if s.unpriced_runs:
    st.info(
        f"{count(s.unpriced_runs)} runs used models without a price; their cost is not included."
    )

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
                daily,
                x="day",
                y="cost_usd",
                color="model",
                color_discrete_map=model_colours(daily["model"].unique()),
                labels={"cost_usd": "USD", "day": ""},
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
            fig = px.bar(
                tok,
                x="day",
                y="tokens",
                color="type",
                color_discrete_map=TOKEN_COLOURS,
                category_orders={"type": list(TOKEN_COLOURS)},
                labels={"day": ""},
            )
            fig.update_layout(
                barmode="stack", height=340, margin={"t": 10, "b": 10}, legend_title_text=""
            )
            st.plotly_chart(fig, key="usage_chart_tokens")

    st.subheader("Cost and latency by model")
    latency = {(r.provider, r.model): r for r in dash.latency}
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": mu.model,
                    "provider": mu.provider,
                    "runs": count(mu.runs),
                    "tokens": count(mu.total_tokens),
                    "cost": usd(mu.cost, unpriced=mu.unpriced_runs == mu.runs),
                    "p50 latency": duration(latency[mu.provider, mu.model].p50_ms)
                    if (mu.provider, mu.model) in latency
                    else "—",
                    "p95 latency": duration(latency[mu.provider, mu.model].p95_ms)
                    if (mu.provider, mu.model) in latency
                    else "—",
                }
                for mu in dash.models
            ],
            columns=["model", "provider", "runs", "tokens", "cost", "p50 latency", "p95 latency"],
        ),
        hide_index=True,
        width="stretch",
        key="usage_models_table",
        column_config={
            "p50 latency": st.column_config.TextColumn(
                help="Half of the completed runs took less (start to end of the run). "
                "Measured on the range's latest 2,000 completed runs."
            ),
            "p95 latency": st.column_config.TextColumn(
                help="95 % of the completed runs took less. "
                "Measured on the range's latest 2,000 completed runs."
            ),
        },
    )

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
                    "avg latency": duration(t.avg_latency_ms),
                    "max latency": duration(t.max_latency_ms),
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
        tr.dataframe(tools, hide_index=True, width="stretch", key="usage_tools_table")

    if dash.ranking:
        st.subheader("Users by cost")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "user": r.display_name or r.email,
                        "email": r.email,
                        "runs": count(r.runs),
                        "tokens": count(r.total_tokens),
                        "cost": usd(r.cost),
                        "unpriced runs": count(r.unpriced_runs),
                    }
                    for r in dash.ranking
                ]
            ),
            hide_index=True,
            width="stretch",
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
                "latency": duration(
                    None
                    if r.finished_at is None
                    else (r.finished_at - r.started_at).total_seconds() * 1000
                ),
                "tokens": count(r.total_tokens),
                "cost": usd(r.cost, unpriced=r.unpriced),
                # A trace holds what its user wrote: only their own runs link to it.
                "trace": trace_link(r.id) if r.user_id == principal.user_id else None,
            }
            for r in dash.runs.rows
        ]
    )
    if own:
        runs = runs.drop(columns=["user"], errors="ignore")
    st.dataframe(
        runs,
        hide_index=True,
        width="stretch",
        key="usage_runs_table",
        column_config={
            "trace": st.column_config.LinkColumn(
                "trace", display_text="Open trace", help="Every step of this run"
            )
        },
    )
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
