"""Money in the API: every USD amount is a decimal **string** with six decimals.

``"0.012345"``, ``"20.000000"``: exact (never a float), to the micro-dollar that run costs are
rounded to (:mod:`jarvis.cost_rounding`); budgets and projections, kept in cents, simply end in
``0000``. Clients parse them with a decimal type, or ``float()`` for display.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer

from jarvis.cost_rounding import COST_QUANTUM


def usd_text(amount: Decimal) -> str:
    """``amount`` as the API writes it: six decimals, no exponent."""
    return format(amount.quantize(COST_QUANTUM), "f")


#: A USD amount, written as a six-decimal string (see the module docstring).
Usd = Annotated[Decimal, PlainSerializer(usd_text, return_type=str, when_used="json")]
