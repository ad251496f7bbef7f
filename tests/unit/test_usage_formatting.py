"""Numbers for people, one colour per model and token type, the usage headline in words."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from jarvis.services.usage import BudgetStatus, MonthUsage
from jarvis.ui.colours import MODEL_PALETTE, TOKEN_COLOURS, model_colour, model_colours
from jarvis.ui.formatting import count, duration, long_date, percent, usd
from jarvis.ui.usage_view import PRESETS, month_sentence, period_label, preset_range


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("0"), "$0.00"),
        (Decimal("12.4"), "$12.40"),
        (Decimal("1234567.891"), "$1,234,567.89"),
        (Decimal("0.01"), "$0.01"),
        (Decimal("0.0004"), "$0.0004"),
        (Decimal("0.000123456"), "$0.00012"),
        (Decimal("0.0048"), "$0.0048"),
        (Decimal("0.00000004"), "<$0.000001"),
        (0.5, "$0.50"),
        (None, "unpriced"),
    ],
)
def test_usd_shows_cents_and_small_costs_with_two_significant_digits(value, shown) -> None:  # type: ignore[no-untyped-def]
    assert usd(value) == shown


def test_unpriced_is_never_a_silent_zero() -> None:
    assert usd(Decimal(0), unpriced=True) == "unpriced"


def test_counts_durations_percentages_and_dates_read_naturally() -> None:
    assert count(1234567) == "1,234,567" and count(None) == "—"
    assert duration(850) == "850 ms"
    assert duration(1234) == "1.2 s"
    assert duration(125_000) == "2 min 05 s"
    assert duration(None) == "—"
    assert percent(0.6234) == "62 %"
    assert long_date(date(2026, 12, 31)) == "31 December"


def test_a_models_colour_is_the_same_whatever_else_a_chart_shows() -> None:
    one = model_colours(["gpt-4o", "claude-3-5-haiku-latest"])
    other = model_colours(["llama3.1:8b", "gpt-4o"])
    assert one["gpt-4o"] == other["gpt-4o"] == model_colour("gpt-4o")
    assert model_colour("gpt-4o") in MODEL_PALETTE
    # A fixed value (SHA-256 of the name), not Python's per-process salted hash.
    assert (
        model_colour("gpt-4o")
        == MODEL_PALETTE[
            int.from_bytes(__import__("hashlib").sha256(b"gpt-4o").digest()[:8], "big")
            % len(MODEL_PALETTE)
        ]
    )
    # Token types have their own colours, none of them a model's.
    assert set(TOKEN_COLOURS) == {"input", "output", "cache read", "cache write"}
    assert not set(TOKEN_COLOURS.values()) & set(MODEL_PALETTE)


def test_presets_are_local_days_ending_today() -> None:
    today = date(2026, 12, 10)
    assert PRESETS == ("7 d", "30 d", "Month to date", "90 d")
    assert preset_range("7 d", today) == (date(2026, 12, 4), today)
    assert preset_range("30 d", today) == (date(2026, 11, 11), today)
    assert preset_range("Month to date", today) == (date(2026, 12, 1), today)
    assert preset_range("90 d", today) == (date(2026, 9, 12), today)
    assert period_label("7 d", today, today) == "the last 7 days"
    assert period_label("Month to date", today, today) == "this month so far"
    assert period_label(None, date(2026, 11, 1), date(2026, 11, 30)) == "01 Nov – 30 Nov 2026"


def month(cost: str, projected: str, runs: int = 5) -> MonthUsage:
    return MonthUsage(
        month_start=date(2026, 12, 1),
        today=date(2026, 12, 10),
        days_in_month=31,
        runs=runs,
        unpriced_runs=0,
        cost=Decimal(cost),
        projected_cost=Decimal(projected),
    )


def budget(spent: str, of: str) -> BudgetStatus:
    fraction = float(Decimal(spent) / Decimal(of))
    return BudgetStatus(Decimal(of), Decimal(spent), fraction, fraction >= 0.8, fraction >= 1)


def test_the_projection_is_said_in_words_against_the_budget() -> None:
    assert month_sentence(month("4", "12.40"), budget("4", "20")) == (
        "This month so far: $4.00 of your $20.00 budget (20 %). At this pace you will spend "
        "about $12.40 by 31 December, 62 % of your $20.00 budget."
    )
    assert month_sentence(month("0.0004", "0.0012"), None) == (
        "This month so far: $0.0004. At this pace you will spend about $0.0012 by 31 December."
    )
    assert month_sentence(month("0", "0", runs=0), budget("0", "20")) == (
        "This month so far: $0.00 of your $20.00 budget (0 %). Nothing spent yet this month."
    )
