"""The one rounding rule for run costs, for Python and for SQL.

A run's cost is USD rounded to 6 decimals, ties away from zero: Python's ``ROUND_HALF_UP`` and
PostgreSQL's ``round(numeric, 6)`` are the same rule. Live pricing (``round_cost``) and
``jarvis usage reprice`` (``sql_round_cost``) both come from here, so a reprice with unchanged
prices changes no cost (tests/integration/test_usage_rules.py proves it).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

COST_DECIMALS = 6
COST_QUANTUM = Decimal(1).scaleb(-COST_DECIMALS)  # 0.000001


def round_cost(value: Decimal) -> Decimal:
    """``value`` rounded to whole micro-dollars, ties away from zero."""
    return value.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def sql_round_cost(expression: str) -> str:
    """The same rounding as an SQL expression (``round(numeric, n)`` rounds ties away from 0)."""
    return f"round(({expression})::numeric, {COST_DECIMALS})"
