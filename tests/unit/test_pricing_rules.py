"""Price selection and cost arithmetic (no database)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from jarvis.llm.base import Usage
from jarvis.services.pricing import compute_cost, load_price_file, pattern_matches, select_price
from jarvis.services.usage import (
    DAILY_CSV_COLUMNS,
    DailyUsage,
    RunRow,
    daily_csv,
    project_month,
    runs_csv,
    summarise,
)


@dataclass
class P:
    id: int
    provider: str
    model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal
    cache_write_per_mtok: Decimal
    effective_from: date


def price(
    id_: int,
    model: str,
    day: date,
    inp: str = "1",
    out: str = "2",
    cr: str = "0.5",
    cw: str = "1.25",
    provider: str = "openai",
) -> P:
    return P(id_, provider, model, Decimal(inp), Decimal(out), Decimal(cr), Decimal(cw), day)


@pytest.mark.parametrize(
    ("pattern", "model", "expected"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4o*", "gpt-4o-2024-08-06", True),
        ("gpt-4o*", "gpt-4", False),
        ("*", "anything", True),
        ("claude-*-4*", "claude-sonnet-4-20250514", True),
        ("claude-*-4*", "claude-3-5-haiku", False),
        ("gpt_4o", "gpt-4o", False),  # "_" is not a wildcard
        ("gpt%", "gpt-4o", False),  # neither is "%"
    ],
)
def test_pattern_matching(pattern: str, model: str, expected: bool) -> None:
    assert pattern_matches(pattern, model) is expected


def test_each_token_type_is_charged_at_its_own_rate() -> None:
    p = price(1, "m", date(2026, 1, 1), inp="3", out="15", cr="0.30", cw="3.75")
    assert compute_cost(p, Usage(input_tokens=1_000_000)) == Decimal("3.000000")
    assert compute_cost(p, Usage(output_tokens=1_000_000)) == Decimal("15.000000")
    assert compute_cost(p, Usage(cache_read_tokens=1_000_000)) == Decimal("0.300000")
    assert compute_cost(p, Usage(cache_write_tokens=1_000_000)) == Decimal("3.750000")
    # 1,234 in + 567 out + 10,000 cache read + 2,000 cache write
    expected = (1234 * 3 + 567 * 15 + 10_000 * Decimal("0.30") + 2000 * Decimal("3.75")) / 10**6
    assert compute_cost(p, Usage(1234, 567, 10_000, 2000)) == expected.quantize(Decimal("0.000001"))
    assert compute_cost(p, Usage()) == Decimal("0.000000")


def test_version_boundaries_pick_the_version_in_force_on_the_day() -> None:
    rows = [
        price(1, "gpt-4o*", date(2026, 1, 1), inp="5"),
        price(2, "gpt-4o*", date(2026, 1, 10), inp="2"),
    ]
    assert select_price(rows, "openai", "gpt-4o", date(2025, 12, 31)) is None
    assert select_price(rows, "openai", "gpt-4o", date(2026, 1, 1)).id == 1  # type: ignore[union-attr]
    assert select_price(rows, "openai", "gpt-4o", date(2026, 1, 9)).id == 1  # type: ignore[union-attr]
    assert select_price(rows, "openai", "gpt-4o", date(2026, 1, 10)).id == 2  # type: ignore[union-attr]


def test_most_specific_pattern_wins_over_a_newer_generic_one() -> None:
    rows = [
        price(1, "gpt-4o*", date(2026, 1, 5)),
        price(2, "gpt-4o-mini*", date(2026, 1, 1)),
        price(3, "gpt-4o-mini-2024-07-18", date(2026, 1, 1)),
    ]
    assert select_price(rows, "openai", "gpt-4o-mini", date(2026, 1, 6)).id == 2  # type: ignore[union-attr]
    assert select_price(rows, "openai", "gpt-4o-mini-2024-07-18", date(2026, 1, 6)).id == 3  # type: ignore[union-attr]
    assert select_price(rows, "openai", "gpt-4o", date(2026, 1, 6)).id == 1  # type: ignore[union-attr]
    # Same name, other provider: no price.
    assert select_price(rows, "openai_compatible", "gpt-4o", date(2026, 1, 6)) is None


def test_seed_file_prices_current_models_and_offline_at_zero() -> None:
    rows = load_price_file()
    by = {(r["provider"], r["model"]): r for r in rows}
    for provider, model in [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-sonnet-4-20250514"),
        ("anthropic", "claude-opus-4-20250514"),
        ("anthropic", "claude-3-5-haiku-20241022"),
    ]:
        chosen = select_price(
            [P(i, **r) for i, r in enumerate(rows)], provider, model, date(2026, 1, 15)
        )
        assert chosen is not None, model
        assert chosen.input_per_mtok > 0 and chosen.output_per_mtok > chosen.input_per_mtok
    offline = by[("offline", "*")]
    assert [
        offline[k]
        for k in (
            "input_per_mtok",
            "output_per_mtok",
            "cache_read_per_mtok",
            "cache_write_per_mtok",
        )
    ] == [0, 0, 0, 0]
    mini = select_price(
        [P(i, **r) for i, r in enumerate(rows)], "openai", "gpt-4o-mini", date(2026, 1, 1)
    )
    assert mini is not None and mini.input_per_mtok == Decimal("0.15")


def test_month_projection_is_linear_over_elapsed_days() -> None:
    start, days, projected = project_month(Decimal("10"), datetime(2026, 1, 11, 0, 0, tzinfo=UTC))
    assert start == date(2026, 1, 1) and days == 31
    assert projected == Decimal("31.00")  # 10 USD in 10 days -> 31 USD in 31
    # On the 1st, less than a day elapsed: extrapolate from one day, never below what is spent.
    _, _, early = project_month(Decimal("2"), datetime(2026, 2, 1, 6, 0, tzinfo=UTC))
    assert early == Decimal("56.00")


def _daily(model: str, cost: str, runs: int = 1) -> DailyUsage:
    return DailyUsage(
        date(2026, 1, 2), "openai", model, runs, 0, 0, 10, 20, 3, 4, 37, Decimal(cost)
    )


def test_daily_csv_holds_exactly_the_rows_shown() -> None:
    rows = [_daily("gpt-4o", "0.123456", 2), _daily("gpt-4o-mini", "0.5")]
    parsed = list(csv.reader(io.StringIO(daily_csv(rows))))
    assert tuple(parsed[0]) == DAILY_CSV_COLUMNS
    assert parsed[1] == [
        "2026-01-02",
        "openai",
        "gpt-4o",
        "2",
        "0",
        "0",
        "10",
        "20",
        "3",
        "4",
        "37",
        "0.123456",
    ]
    assert len(parsed) == 3
    s = summarise(rows)
    assert s.runs == 3 and s.cost == Decimal("0.623456") and s.total_tokens == 74


def test_runs_csv_leaves_the_cost_of_an_unpriced_run_empty() -> None:
    import uuid

    base = dict(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        user_email="a@example.com",
        provider="openai_compatible",
        status="completed",
        input_tokens=1,
        output_tokens=2,
        cache_read_tokens=0,
        cache_write_tokens=0,
        total_tokens=3,
        price_version=None,
        started_at=datetime(2026, 1, 2, 9, 30, tzinfo=UTC),
        finished_at=None,
    )
    rows = [
        RunRow(model="llama3", cost=None, unpriced=True, **base),  # type: ignore[arg-type]
        RunRow(model="gpt-4o", cost=Decimal("0.01"), unpriced=False, **base),
    ]  # type: ignore[arg-type]
    parsed = list(csv.DictReader(io.StringIO(runs_csv(rows))))
    assert parsed[0]["cost_usd"] == "" and parsed[0]["unpriced"] == "yes"
    assert parsed[1]["cost_usd"] == "0.010000" and parsed[1]["unpriced"] == "no"
