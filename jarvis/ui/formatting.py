"""Numbers for people, one helper per kind, used by every page that shows money, counts or
durations (pure: no Streamlit).

* :func:`usd`       ``$1,234.56``; under a cent two significant digits (``$0.0004``,
                    ``$0.00012``), ``<$0.000001`` below that; ``unpriced`` when unknown
* :func:`count`     ``12,345``
* :func:`duration`  ``850 ms``, ``1.2 s``, ``2 min 05 s``
* :func:`percent`   ``62 %``
* :func:`long_date` ``31 December``
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

#: The smallest amount shown as such; anything smaller (but not zero) is "<$0.000001".
SMALLEST = Decimal("0.000001")


def usd(value: Decimal | float | int | None, *, unpriced: bool = False) -> str:
    """A US-dollar amount: cents from one cent on, two significant digits below (at most six
    decimals), ``unpriced`` when ``unpriced`` or ``value`` is None (never a silent zero)."""
    if unpriced or value is None:
        return "unpriced"
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    if amount == 0:
        return "$0.00"
    if amount >= Decimal("0.01"):
        return f"{sign}${amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    if amount < SMALLEST:
        return f"{sign}<${SMALLEST}"
    # Two significant digits: 0.000432 -> exponent -4 -> 5 decimals -> 0.00043.
    places = min(6, -amount.adjusted() + 1)
    text = f"{amount.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"
    return f"{sign}${text.rstrip('0') if '.' in text and places > 2 else text}"


def count(value: int | float | None) -> str:
    """A whole number with thousands separators (``—`` when unknown)."""
    return "—" if value is None else f"{round(value):,}"


def duration(ms: int | float | None) -> str:
    """A duration: milliseconds under a second, seconds with one decimal under a minute,
    then minutes and seconds (``—`` when unknown)."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{round(ms):,} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes:,} min {rest:02d} s"


def percent(fraction: float) -> str:
    """A fraction as a whole percentage, ``62 %``."""
    return f"{round(fraction * 100):,} %"


def long_date(day: date) -> str:
    """``31 December`` (the day without a leading zero)."""
    return f"{day.day} {day:%B}"
