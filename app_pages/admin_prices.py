"""Admin: model prices (versioned: a change is a new version, history stays), recomputing past
runs' costs after a change (a background job), and budgets (instance default and per-user
overrides)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import streamlit as st

from jarvis.services.pricing import PROVIDERS, PriceInput
from jarvis.services.usage import UserBudget
from jarvis.ui.components import flash, show_errors, show_flash
from jarvis.ui.guard import require_admin
from jarvis.ui.jobs import follow_job, remember_job, show_job_outcome

REPRICE_JOB = "prices_reprice_job"
REPRICE_SINCE = "prices_reprice_since"

services, principal = require_admin()


def _save_override(chosen: UserBudget, key: str, default: Decimal) -> None:
    """Save the override typed in the form; the field then shows the amount as saved."""
    with show_errors(in_callback=True):
        result = services.usage.set_user_budget(
            principal, chosen.user_id, st.session_state.get(key, "")
        )
        st.session_state[key] = "" if result is None else f"{result:.2f}"
        flash(
            f"{chosen.email}: "
            + (
                f"no override, uses the default (${default:,.2f})."
                if result is None
                else f"${result:,.2f} per month."
            ),
            rerun=False,
        )


def reprice_section(today: date, last_change: date) -> None:
    """Recompute the costs of runs since a day with the prices now recorded: a background job
    with a progress bar, then its summary."""
    st.subheader("Recompute costs")
    st.caption(
        "A run keeps the cost it was given when it ended. After adding or correcting a price, "
        "recompute the runs started since a day (UTC) with the prices now recorded, for every "
        "user; the usage figures follow. It runs in the background: you may leave this page."
    )
    st.session_state.setdefault(REPRICE_SINCE, last_change)
    since = st.date_input("First day (UTC)", max_value=today, key=REPRICE_SINCE)
    if isinstance(since, date) and st.button(
        f"Recompute costs since {since.isoformat()}",
        key="prices_reprice_go",
        icon=":material/calculate:",
    ):
        with show_errors():
            remember_job(REPRICE_JOB, services.jobs.reprice(principal, since))
    show_job_outcome(
        follow_job(services.jobs, principal, REPRICE_JOB),
        done="Costs recomputed.",
        failed="Recomputing the costs failed.",
    )


st.title("Prices and budgets")
prices_tab, budgets_tab = st.tabs(["Prices", "Budgets"])

with prices_tab:
    with show_errors(stop=True):
        versions = services.pricing.list_prices(principal)
        in_force = {(p.provider, p.model): p.id for p in services.pricing.current_prices(principal)}
    today = services.clock.now().date()
    st.caption(
        "USD per 1 million tokens. A model is an exact name or a pattern with `*` "
        "(e.g. `gpt-4o-mini*`); the most specific match wins. Runs on models without a price "
        "are shown as unpriced, never as free."
    )
    show_all = st.toggle("Show every version (history)", key="prices_show_all")
    rows = [
        {
            "version": p.id,
            "provider": p.provider,
            "model": p.model,
            "input": float(p.input_per_mtok),
            "output": float(p.output_per_mtok),
            "cache read": float(p.cache_read_per_mtok),
            "cache write": float(p.cache_write_per_mtok),
            "effective from": p.effective_from,
            "status": "in force"
            if in_force.get((p.provider, p.model)) == p.id
            else ("scheduled" if p.effective_from > today else "superseded"),
        }
        for p in versions
        if show_all or in_force.get((p.provider, p.model)) == p.id or p.effective_from > today
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="prices_table")

    st.subheader("Add a price version")
    with st.form("prices_add", clear_on_submit=False):
        c = st.columns(2)
        provider = c[0].selectbox("Provider", PROVIDERS, key="prices_provider")
        model = c[1].text_input("Model or pattern", key="prices_model", placeholder="gpt-4o-mini*")
        n = st.columns(4)
        price_in = n[0].number_input(
            "Input", min_value=0.0, step=0.01, format="%.6f", key="prices_input"
        )
        price_out = n[1].number_input(
            "Output", min_value=0.0, step=0.01, format="%.6f", key="prices_output"
        )
        price_cr = n[2].number_input(
            "Cache read", min_value=0.0, step=0.01, format="%.6f", key="prices_cache_read"
        )
        price_cw = n[3].number_input(
            "Cache write", min_value=0.0, step=0.01, format="%.6f", key="prices_cache_write"
        )
        effective = st.date_input("Effective from", value=today, key="prices_effective")
        submitted = st.form_submit_button("Add version")
    if submitted:
        with show_errors():
            added = services.pricing.add_price(
                principal,
                PriceInput(
                    provider=provider,
                    model=model,
                    input_per_mtok=Decimal(str(price_in)),
                    output_per_mtok=Decimal(str(price_out)),
                    cache_read_per_mtok=Decimal(str(price_cr)),
                    cache_write_per_mtok=Decimal(str(price_cw)),
                    effective_from=effective,
                ),
            )
            st.success(
                f"Added version {added.id} for {added.provider} / {added.model} from "
                f"{added.effective_from}. New runs use it from that day; to re-price past runs, "
                "use *Recompute costs* below (or run "
                f"`jarvis usage reprice --since {added.effective_from}`)."
            )
            if added.effective_from <= today:
                st.session_state[REPRICE_SINCE] = added.effective_from
    reprice_section(
        today, max((p.effective_from for p in versions if p.effective_from <= today), default=today)
    )

with budgets_tab:
    with show_errors(stop=True):
        default = services.usage.default_budget(principal)
        budgets = services.usage.list_budgets(principal)
    st.caption(
        "Each user's monthly budget (their local calendar month): their override, else the "
        "default. Chat warns at 80 % and refuses new runs once it is spent."
    )
    with st.form("budgets_default"):
        new_default = st.number_input(
            "Default monthly budget (USD)",
            min_value=0.0,
            value=float(default),
            step=5.0,
            key="budgets_default_usd",
        )
        if st.form_submit_button("Save default"):
            with show_errors():
                saved = services.usage.set_default_budget(principal, Decimal(str(new_default)))
                st.success(f"Default budget is now ${saved:,.2f}.")

    st.subheader("Per-user overrides")
    st.caption(
        f"Empty means no override: the user has the default (${default:,.2f}). "
        "An override of 0 blocks all of that user's runs."
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "user": b.display_name,
                    "email": b.email,
                    "monthly budget": f"default (${default:,.2f})"
                    if b.override_usd is None
                    else f"${b.override_usd:,.2f} (override)",
                }
                for b in budgets
            ]
        ),
        hide_index=True,
        key="budgets_table",
    )
    by_id = {str(b.user_id): b for b in budgets}
    if by_id:
        who = st.selectbox(
            "User",
            list(by_id),
            key="budgets_user_id",
            format_func=lambda k: f"{by_id[k].display_name} <{by_id[k].email}>",
        )
        chosen = by_id[who]
        key = f"budgets_user_usd_{who}"
        with st.form(f"budgets_user_{who}"):
            st.text_input(
                "Monthly budget override (USD)",
                value="" if chosen.override_usd is None else f"{chosen.override_usd:.2f}",
                placeholder=f"empty: the default, ${default:,.2f}",
                key=key,
                help="Leave empty to use the default budget. 0 blocks every run of this user.",
            )
            st.form_submit_button(
                "Save override", on_click=_save_override, args=(chosen, key, default)
            )
        show_flash()
